/**
 * The hash chain. Each row's hash covers the previous row's hash and the row's
 * own content (its id included), so changing, removing or moving any row breaks
 * the link to the row after it. The field list below is format version 1 of the
 * log: changing it means a new schema_version, or every old log fails verify.
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "./canonical.js";

/** The prev_hash of the first row. */
export const GENESIS = "0".repeat(64);

/** Exactly what a row's hash covers; values as stored (args is the stored, redacted text). */
export interface ChainFields {
  id: number;
  time: string;
  server: string;
  tool: string;
  verdict: string;
  risk: string;
  reason: string;
  rule: string;
  argsHash: string;
  args: string;
  argsTruncated: boolean;
  decision: string;
  decidedBy: string | null;
  latencyMs: number;
  resultBytes: number | null;
  error: string | null;
  session: string | null;
}

/** sha256(prevHash + "\n" + canonical JSON of the fields), hex. */
export function rowHash(prevHash: string, fields: ChainFields): string {
  return createHash("sha256").update(`${prevHash}\n${canonicalJson(fields)}`).digest("hex");
}

/** The first 12 hex digits, enough to tell hashes apart in a message. */
export function shortHash(hash: string): string {
  return hash.slice(0, 12);
}
