/**
 * Canonical JSON: object keys sorted by UTF-16 code units (as RFC 8785 / JCS does),
 * no whitespace, numbers as JavaScript prints them. The audit chain hashes this
 * text, so the same content must always give the same bytes, whatever the key
 * order the caller happened to build; a verifier in another language can redo it.
 */
import { AuditError } from "./errors.js";

/** The canonical JSON text of a JSON-like value (undefined members dropped, like JSON.stringify). */
export function canonicalJson(value: unknown): string {
  return write(value, new Set());
}

function write(value: unknown, stack: Set<object>): string {
  if (value === null || value === undefined) return "null";
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      // JSON has no NaN/Infinity; JSON.stringify turns them into null, and so do we.
      return Number.isFinite(value) ? JSON.stringify(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      // Tool args come from JSON and never hold bigints; a string keeps the value rather than throwing mid-call.
      return JSON.stringify(value.toString());
    case "object":
      break;
    default:
      // Functions and symbols cannot appear in JSON; mirror JSON.stringify inside arrays.
      return "null";
  }
  const obj = value as object;
  if (stack.has(obj)) throw new AuditError("E_AUDIT_WRITE", "The tool call's arguments contain a cycle and cannot be written to the audit log.");
  stack.add(obj);
  try {
    if (Array.isArray(obj)) return `[${obj.map((v) => write(v, stack)).join(",")}]`;
    if (typeof (obj as { toJSON?: unknown }).toJSON === "function") return write((obj as { toJSON: () => unknown }).toJSON(), stack);
    const rec = obj as Record<string, unknown>;
    const parts: string[] = [];
    for (const key of Object.keys(rec).sort()) {
      const v = rec[key];
      if (v === undefined || typeof v === "function" || typeof v === "symbol") continue;
      parts.push(`${JSON.stringify(key)}:${write(v, stack)}`);
    }
    return `{${parts.join(",")}}`;
  } finally {
    stack.delete(obj);
  }
}
