/**
 * The call hash binds an approval to exactly one call: a person approves a card,
 * the card names sha256(server, tool, canonical args), and the hub runs the call
 * only when its own hash is the same. Canonical JSON makes the hash independent
 * of key order and whitespace.
 *
 * What JSON carries faithfully is kept as JSON would send it (an object key whose
 * value is undefined is left out, exactly as on the wire; `toJSON` is honoured).
 * What JSON would silently change is refused, so a person never approves one
 * thing while another is sent: NaN and ±Infinity (JSON sends null), bigint,
 * functions, symbols, Map/Set (JSON sends {}), undefined inside arrays or alone,
 * and cycles.
 */
import { createHash } from "node:crypto";
import { ApprovalError } from "./errors.js";

/** Sorted-keys, whitespace-free JSON; throws E_APPROVAL_UNHASHABLE on values JSON cannot carry faithfully. */
export function canonicalJson(value: unknown): string {
  return encode(value, "$", new Set());
}

/** sha256 hex over the canonical JSON of {server, tool, args}. */
export function callHash(server: string, tool: string, args: Record<string, unknown>): string {
  return createHash("sha256").update(canonicalJson({ server, tool, args })).digest("hex");
}

function refuse(where: string, what: string): never {
  throw new ApprovalError("E_APPROVAL_UNHASHABLE", `Tool arguments cannot be approved: ${where} is ${what}, which JSON cannot carry as it is. Send plain JSON values (strings, finite numbers, booleans, null, arrays, objects).`, {
    details: { at: where },
  });
}

function encode(value: unknown, where: string, seen: Set<object>): string {
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) refuse(where, String(value));
      return JSON.stringify(value);
    case "undefined":
      return refuse(where, "undefined");
    case "bigint":
    case "function":
    case "symbol":
      return refuse(where, `a ${typeof value}`);
  }
  if (value === null) return "null";
  const obj = value as object;
  if (typeof (obj as { toJSON?: unknown }).toJSON === "function") {
    return encode((obj as { toJSON: () => unknown }).toJSON(), where, seen);
  }
  if (obj instanceof Map || obj instanceof Set) refuse(where, `a ${obj.constructor.name}`);
  if (seen.has(obj)) refuse(where, "a reference back to itself (a cycle)");
  seen.add(obj);
  try {
    if (Array.isArray(obj)) return `[${obj.map((item, i) => encode(item, `${where}[${i}]`, seen)).join(",")}]`;
    const parts: string[] = [];
    for (const key of Object.keys(obj).sort()) {
      const inner = (obj as Record<string, unknown>)[key];
      if (inner === undefined) continue;
      parts.push(`${JSON.stringify(key)}:${encode(inner, `${where}.${key}`, seen)}`);
    }
    return `{${parts.join(",")}}`;
  } finally {
    seen.delete(obj);
  }
}
