/**
 * Config overrides from the environment: `LUMINAGUARD_<SECTION>__<KEY>=value`,
 * `__` between levels (`LUMINAGUARD_DAEMON__TCP__PORT=8080`). Names are matched
 * to the schema's keys ignoring case and underscores (`SHUTDOWN_TIMEOUT_SECONDS`
 * → `shutdownTimeoutSeconds`); values are JSON when they parse as JSON
 * (`8080`, `true`, `["a"]`), else strings. Applied to the raw file before
 * validation, so an override is checked like the file is.
 */
import { LuminaError } from "../errors.js";

const PREFIX = "LUMINAGUARD_";

/** The part of a zod (mini) schema's internals we walk to learn key names. */
interface Def {
  type?: string;
  shape?: Record<string, { _zod: { def: Def } }>;
  innerType?: { _zod: { def: Def } };
  in?: { _zod: { def: Def } };
  out?: { _zod: { def: Def } };
  options?: { _zod: { def: Def } }[];
  valueType?: { _zod: { def: Def } };
  element?: { _zod: { def: Def } };
}

/** One override: its path in the config and the value. */
export interface EnvOverride {
  variable: string;
  path: string[];
  value: unknown;
}

const norm = (s: string): string => s.toLowerCase().replaceAll("_", "");

/** Child schemas under `def` for a key, plus the key's real spelling when the schema names it. */
function child(def: Def | undefined, key: string): { key: string | undefined; def: Def | undefined } {
  if (!def) return { key: undefined, def: undefined };
  switch (def.type) {
    case "default":
    case "prefault":
    case "optional":
    case "nullable":
    case "readonly":
      return child(def.innerType?._zod.def, key);
    case "pipe": {
      const viaOut = child(def.out?._zod.def, key);
      return viaOut.key !== undefined ? viaOut : child(def.in?._zod.def, key);
    }
    case "object": {
      const found = Object.keys(def.shape ?? {}).find((k) => norm(k) === norm(key));
      return found === undefined ? { key: undefined, def: undefined } : { key: found, def: def.shape![found]!._zod.def };
    }
    case "union":
      for (const o of def.options ?? []) {
        const r = child(o._zod.def, key);
        if (r.key !== undefined) return r;
      }
      return { key: undefined, def: undefined };
    case "record":
      return { key: undefined, def: def.valueType?._zod.def };
    case "array":
      return { key: undefined, def: def.element?._zod.def };
    default:
      return { key: undefined, def: undefined };
  }
}

/** snake_case or SHOUTING_CASE to camelCase, for keys the schema does not name (record keys). */
function camel(s: string): string {
  const lower = s.toLowerCase();
  return lower.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Parse a value: JSON when it parses, else the string itself. */
export function envValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The overrides found in `env`, in a stable order; `schema` gives key spellings. */
export function envOverrides(env: NodeJS.ProcessEnv, schema: { _zod: { def: unknown } }): EnvOverride[] {
  const out: EnvOverride[] = [];
  for (const variable of Object.keys(env).sort()) {
    if (!variable.startsWith(PREFIX) || !variable.includes("__")) continue;
    const parts = variable.slice(PREFIX.length).split("__");
    if (parts.some((p) => p === "")) throw new LuminaError("E_CONFIG", `The environment variable ${variable} has an empty part; use LUMINAGUARD_<SECTION>__<KEY> with one "__" between levels.`);
    let def = schema._zod.def as Def | undefined;
    const path: string[] = [];
    for (const part of parts) {
      const c = child(def, part);
      // Record keys (server names, header names) keep their spelling from the existing file where they can.
      path.push(c.key ?? (def?.type === "record" || def === undefined ? part : camel(part)));
      def = c.def;
    }
    out.push({ variable, path, value: envValue(env[variable] ?? "") });
  }
  return out;
}

/** Lay the overrides onto a raw config object (a copy; the input is not changed). */
export function applyEnvOverrides(raw: Record<string, unknown>, overrides: EnvOverride[]): Record<string, unknown> {
  const root = structuredClone(raw);
  for (const o of overrides) {
    let node: Record<string, unknown> = root;
    for (const [i, key] of o.path.entries()) {
      const last = i === o.path.length - 1;
      // An existing key that differs only in case (a server named "Fs") wins over our spelling.
      const existing = Object.keys(node).find((k) => k === key) ?? Object.keys(node).find((k) => norm(k) === norm(key));
      const k = existing ?? key;
      if (last) {
        node[k] = o.value;
        break;
      }
      const next = node[k];
      if (typeof next !== "object" || next === null || Array.isArray(next)) node[k] = {};
      node = node[k] as Record<string, unknown>;
    }
  }
  return root;
}
