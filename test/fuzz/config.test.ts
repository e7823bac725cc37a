// Bad input to the config schema: random JSON values and random mutations of a
// valid config. parseConfig must return a Config or throw ConfigError (E_CONFIG)
// whose message names where the problem is; never any other exception.
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../src/config/load.js";
import { starterJson } from "../../src/config/starter.js";
import { fc, runs } from "./settings.js";

/** A valid config with every section and the nested shapes (servers, allow-lists, webhooks). */
function validConfig(): Record<string, unknown> {
  const c = JSON.parse(starterJson()) as Record<string, Record<string, unknown>>;
  c.sandbox!.network = { allow: [{ host: "api.example.com", ports: [443] }, { cidr: "10.0.0.0/8", ports: ["8000-8100"], proto: "tcp" }], domains: ["*.example.org"] };
  c.mcp!.servers = { fs: { command: "node", args: ["server.js", "/workspace"] }, web: { url: "http://127.0.0.1:9/mcp", allow: ["127.0.0.1:9"] } };
  (c.daemon as Record<string, unknown>).webhooks = [{ url: "http://127.0.0.1:9/hook", events: ["task.*"], secret: "0123456789abcdef0123" }];
  return c;
}

/** Every path to a value inside `v` (objects and arrays), the root excluded. */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (v === null || typeof v !== "object") return [];
  const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  return keys.flatMap((k) => [[...prefix, k], ...paths((v as Record<string | number, unknown>)[k], [...prefix, k])]);
}

type Mutation = { op: "set"; value: unknown } | { op: "delete" } | { op: "add"; key: string; value: unknown };

/** Apply a mutation at `path` (for "add": a new key in the object or array at `path`). */
function mutate(root: Record<string, unknown>, path: (string | number)[], m: Mutation): void {
  const parent = path.slice(0, -1).reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], root) as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (m.op === "set") parent[last] = m.value;
  else if (m.op === "delete") {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else {
    const target = parent[last];
    if (target !== null && typeof target === "object") (target as Record<string, unknown>)[Array.isArray(target) ? target.length : m.key] = m.value;
    else parent[last] = m.value;
  }
}

const value = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom("", "-1", "1e309", "512X", "0M", "99999999999T", "NaN", "\u0000", "../..", "*", "http://[::1", "__proto__"),
  fc.constantFrom(-1, 0, 1.5, Number.MAX_SAFE_INTEGER, -0, 1e308),
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("set" as const), value }),
  fc.record({ op: fc.constant("delete" as const) }),
  fc.record({ op: fc.constant("add" as const), key: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("__proto__", "constructor", "toString")), value }),
);

/** parseConfig's outcome: a Config, or the ConfigError it must throw (anything else fails the test). */
function outcome(raw: unknown): ConfigError | undefined {
  try {
    const c = parseConfig(raw);
    expect(c.sandbox.limits.memory).toBeGreaterThan(0);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe("E_CONFIG");
    expect((err as ConfigError).message).toMatch(/^Invalid config: ./);
    return err as ConfigError;
  }
}

describe("config schema under bad input", () => {
  it("the base config is valid", () => {
    expect(outcome(validConfig())?.message).toBeUndefined();
  });

  it("random values give a Config or E_CONFIG, nothing else", () => {
    fc.assert(fc.property(fc.anything({ maxDepth: 3, withNullPrototype: true, withMap: true, withSet: true, withDate: true, withTypedArray: true, withBigInt: true, withSparseArray: true }), (raw) => void outcome(raw)));
  });

  it("random sections give a Config or E_CONFIG naming the section", () => {
    const sections = fc.constantFrom("sandbox", "pool", "microvm", "mcp", "approval", "audit", "agent", "daemon");
    fc.assert(
      fc.property(sections, fc.anything({ maxDepth: 3 }), (section, v) => {
        const err = outcome({ [section]: v });
        if (err) expect(err.message).toContain(`(at ${section}`);
      }),
    );
  });

  it("a mutation of a valid config gives a Config or E_CONFIG naming where", () => {
    const base = validConfig();
    const all = paths(base);
    fc.assert(
      fc.property(fc.constantFrom(...all), mutation, (path, m) => {
        const raw = structuredClone(base);
        mutate(raw, path, m);
        const err = outcome(raw);
        // Under the section it changed (a top-level key of its own is named as unrecognized).
        if (err) expect(err.message).toMatch(new RegExp(`\\(at ${String(path[0])}|Unrecognized key`));
      }),
      { numRuns: runs(600) },
    );
  });
});
