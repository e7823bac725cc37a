/** The shapes of the audit log: what the hub writes, what readers get back, what verify reports. */
import type { RiskLevel, Verdict } from "../types.js";

/** How a call got (or did not get) to run: green auto-run, a person's yes/no, or stopped before running. */
export type AuditDecision = "auto" | "approved" | "denied" | "not-run";

/** The decisions, for validation and CLI choices. */
export const AUDIT_DECISIONS: readonly AuditDecision[] = ["auto", "approved", "denied", "not-run"];

/** One tool call as the MCP hub reports it. */
export interface AuditEntryInput {
  /** When the call was made; default now. */
  time?: Date | undefined;
  server: string;
  tool: string;
  verdict: Verdict;
  risk: RiskLevel;
  reason: string;
  rule: string;
  /** sha256 the caller computed over the real (unredacted) arguments; stored as is. */
  argsHash: string;
  /** The real arguments; redacted and capped before they are stored. */
  args: Record<string, unknown>;
  decision: AuditDecision;
  decidedBy: string | null;
  latencyMs: number;
  resultBytes: number | null;
  error: string | null;
  session?: string | null | undefined;
}

/** One stored row, as every reader sees it. */
export interface AuditRow {
  id: number;
  /** ISO 8601, UTC, millisecond precision. */
  time: string;
  server: string;
  tool: string;
  verdict: Verdict;
  risk: RiskLevel;
  reason: string;
  rule: string;
  argsHash: string;
  /** Redacted arguments; when `argsTruncated`, `{ $truncated: { bytes, preview } }`. */
  args: Record<string, unknown>;
  argsTruncated: boolean;
  decision: AuditDecision;
  decidedBy: string | null;
  latencyMs: number;
  resultBytes: number | null;
  error: string | null;
  session: string | null;
  /** Hash of the row before (64 zeros for the first row). */
  prevHash: string;
  /** sha256(prevHash + "\n" + canonical JSON of this row's content, id included). */
  hash: string;
}

/** Which rows `list` returns; newest first. */
export interface AuditFilter {
  /** At most this many rows (default 50, at most 10,000). */
  limit?: number | undefined;
  /** Skip this many matching rows (simple paging). */
  offset?: number | undefined;
  /** Only rows with a smaller id (stable paging while rows are being added). */
  beforeId?: number | undefined;
  server?: string | undefined;
  tool?: string | undefined;
  decision?: AuditDecision | undefined;
  /** Only rows at or after this time. */
  since?: Date | undefined;
  session?: string | undefined;
}

/** What kind of tampering a problem shows. `schema-altered` (id 0) means the append-only triggers are gone. */
export type VerifyProblemKind = "edited" | "deleted-before" | "chain-broken" | "reordered" | "head-mismatch" | "schema-altered";

/** One thing verify found wrong, naming the row it shows at (0 when it is about the file as a whole). */
export interface VerifyProblem {
  id: number;
  kind: VerifyProblemKind;
  message: string;
}

/** The result of walking the whole chain. */
export interface VerifyResult {
  ok: boolean;
  /** Rows walked. */
  rows: number;
  problems: VerifyProblem[];
  /** Problems found beyond the first 1,000 (not listed, to keep memory bounded on a mangled log). */
  moreProblems: number;
}
