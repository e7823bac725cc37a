/** Between SQL records and `AuditRow`s: the column list, the mapping, and the `list` query. */
import type { SQLInputValue, SQLOutputValue } from "node:sqlite";
import type { RiskLevel, Verdict } from "../types.js";
import type { ChainFields } from "./chain.js";
import type { AuditDecision, AuditFilter, AuditRow } from "./types.js";

/** A record as node:sqlite returns it. */
export type RawRow = Record<string, SQLOutputValue>;

/** Every column of audit_log, in the order the INSERT uses. */
export const COLUMNS =
  "id, time, server, tool, verdict, risk, reason, rule, args_hash, args, args_truncated, decision, decided_by, latency_ms, result_bytes, error, session, prev_hash, hash";

/** `list` returns at most this many rows per call. */
export const MAX_LIST_LIMIT = 10_000;

/** `list`'s default page size. */
export const DEFAULT_LIST_LIMIT = 50;

const str = (v: SQLOutputValue): string => (typeof v === "string" ? v : String(v));
const strOrNull = (v: SQLOutputValue): string | null => (v === null ? null : str(v));
const num = (v: SQLOutputValue): number => Number(v);

/** The content fields of a stored record, exactly as its hash covers them. */
export function chainFields(raw: RawRow): ChainFields {
  return {
    id: num(raw.id!),
    time: str(raw.time!),
    server: str(raw.server!),
    tool: str(raw.tool!),
    verdict: str(raw.verdict!),
    risk: str(raw.risk!),
    reason: str(raw.reason!),
    rule: str(raw.rule!),
    argsHash: str(raw.args_hash!),
    args: str(raw.args!),
    argsTruncated: num(raw.args_truncated!) !== 0,
    decision: str(raw.decision!),
    decidedBy: strOrNull(raw.decided_by ?? null),
    latencyMs: num(raw.latency_ms!),
    resultBytes: raw.result_bytes === null || raw.result_bytes === undefined ? null : num(raw.result_bytes),
    error: strOrNull(raw.error ?? null),
    session: strOrNull(raw.session ?? null),
  };
}

/** Parse stored argument text; a row edited into invalid JSON still shows what is there. */
function parseArgs(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // Fall through: only a file edited by hand gets here, and verify names that row.
  }
  return { $unparseable: text };
}

/** A stored record as the row readers get. */
export function toAuditRow(raw: RawRow): AuditRow {
  const f = chainFields(raw);
  return {
    ...f,
    verdict: f.verdict as Verdict,
    risk: f.risk as RiskLevel,
    decision: f.decision as AuditDecision,
    args: parseArgs(f.args),
    prevHash: str(raw.prev_hash!),
    hash: str(raw.hash!),
  };
}

/** The SQL and parameters of a `list` call; the SQL depends only on which filters are set, so it can be cached. */
export function listQuery(filter: AuditFilter): { sql: string; params: SQLInputValue[] } {
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  if (filter.beforeId !== undefined) {
    where.push("id < ?");
    params.push(filter.beforeId);
  }
  if (filter.server !== undefined) {
    where.push("server = ?");
    params.push(filter.server);
  }
  if (filter.tool !== undefined) {
    where.push("tool = ?");
    params.push(filter.tool);
  }
  if (filter.decision !== undefined) {
    where.push("decision = ?");
    params.push(filter.decision);
  }
  if (filter.since !== undefined) {
    // Times are stored as toISOString() text, which sorts like the instants it names.
    where.push("time >= ?");
    params.push(filter.since.toISOString());
  }
  if (filter.session !== undefined) {
    where.push("session = ?");
    params.push(filter.session);
  }
  const limit = Math.min(Math.max(Math.trunc(filter.limit ?? DEFAULT_LIST_LIMIT), 0), MAX_LIST_LIMIT);
  params.push(limit, Math.max(Math.trunc(filter.offset ?? 0), 0));
  const sql = `SELECT ${COLUMNS} FROM audit_log${where.length > 0 ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ? OFFSET ?`;
  return { sql, params };
}
