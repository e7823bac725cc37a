/**
 * What of a tool call's arguments reaches the audit log: secrets replaced by
 * "[REDACTED]" (by key name, at any depth), then canonical JSON, then a size cap.
 * The log is kept for months and read by people who must not see credentials;
 * the caller's `argsHash`, computed over the real arguments, still lets someone who
 * holds the original call prove it was this one.
 */
import { canonicalJson } from "./canonical.js";

/** Key-name globs redacted when the config names none. */
export const DEFAULT_REDACT: readonly string[] = ["*password*", "*secret*", "*token*", "*api_key*", "*apikey*", "authorization", "cookie", "*private_key*"];

/** The value that replaces a redacted one. */
export const REDACTED = "[REDACTED]";

/** Stored argument text is capped at this many bytes by default (64 KiB). */
export const DEFAULT_MAX_ARGS_BYTES = 64 * 1024;

/** Below this a capped entry could not even hold its own marker. */
const MIN_MAX_ARGS_BYTES = 256;

/** Tells whether an object key names a secret. */
export type KeyMatcher = (key: string) => boolean;

/** Compile case-insensitive globs (`*` any run of characters, `?` one character) into one matcher. */
export function keyMatcher(globs: readonly string[]): KeyMatcher {
  const sources = globs
    .filter((g) => g.length > 0)
    .map((g) => g.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[\\s\\S]*").replace(/\?/g, "[\\s\\S]"));
  if (sources.length === 0) return () => false;
  const re = new RegExp(`^(?:${sources.join("|")})$`, "i");
  return (key) => re.test(key);
}

/** A deep copy of `value` with every member whose key matches replaced by "[REDACTED]". */
export function redact(value: unknown, matches: KeyMatcher): unknown {
  if (Array.isArray(value)) return value.map((v) => redact(v, matches));
  if (value === null || typeof value !== "object") return value;
  // Dates and the like serialize through toJSON; there are no keys to look at.
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) out[key] = matches(key) ? REDACTED : redact(v, matches);
  return out;
}

/** The argument text as stored, and whether it was cut to fit the cap. */
export interface StoredArgs {
  text: string;
  truncated: boolean;
}

/**
 * Redact, serialize canonically and cap. A capped entry stays valid JSON:
 * `{"$truncated":{"bytes":<full size>,"preview":"<start of the canonical text>"}}`,
 * so readers never have to parse half a document.
 */
export function storedArgs(args: Record<string, unknown>, matches: KeyMatcher, maxBytes = DEFAULT_MAX_ARGS_BYTES): StoredArgs {
  const text = canonicalJson(redact(args, matches));
  const bytes = Buffer.byteLength(text);
  const cap = Math.max(maxBytes, MIN_MAX_ARGS_BYTES);
  if (bytes <= cap) return { text, truncated: false };
  const full = Buffer.from(text);
  // Escaping can grow the preview (quotes become \"), so shrink until the whole entry fits.
  let budget = cap - 64;
  for (;;) {
    const preview = full.subarray(0, budget).toString("utf8").replace(/\uFFFD+$/, "");
    const capped = canonicalJson({ $truncated: { bytes, preview } });
    const size = Buffer.byteLength(capped);
    if (size <= cap || budget <= 0) return { text: capped, truncated: true };
    budget = Math.max(0, Math.floor((budget * cap) / size) - 16);
  }
}
