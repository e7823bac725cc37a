/** /v1/audit: the audit log, filtered and paged, one row, and the chain check. */
import { parseDuration } from "../../config/duration.js";
import { AUDIT_DECISIONS, type AuditDecision, type AuditFilter } from "../../approval/audit/types.js";
import type { DaemonApp, DaemonContext } from "../context.js";
import { badRequest, notFound } from "../errors.js";

/** Mount the audit routes. */
export function auditRoutes(app: DaemonApp, ctx: DaemonContext): void {
  app.get("/v1/audit", (c) => {
    const q = c.req.query();
    const filter: AuditFilter = {
      server: q.server || undefined,
      tool: q.tool || undefined,
      session: q.session || undefined,
      decision: q.decision ? decisionOf(q.decision) : undefined,
      since: q.since ? sinceOf(q.since) : undefined,
      limit: q.limit ? intOf(q.limit, "limit", 1, 10_000) : undefined,
      beforeId: q.before ? intOf(q.before, "before", 1, Number.MAX_SAFE_INTEGER) : undefined,
    };
    const rows = ctx.audit.list(filter);
    // The next page: rows older than the last one returned.
    return c.json({ rows, next: rows.length > 0 && rows.length === (filter.limit ?? 50) ? rows.at(-1)!.id : null });
  });
  app.get("/v1/audit/verify", (c) => {
    const result = ctx.audit.verify();
    return c.json(result);
  });
  app.get("/v1/audit/:id", (c) => {
    const id = intOf(c.req.param("id"), "id", 1, Number.MAX_SAFE_INTEGER);
    const row = ctx.audit.get(id);
    if (!row) throw notFound(`Audit row ${id}`, "list rows with GET /v1/audit.");
    return c.json(row);
  });
}

function intOf(text: string, name: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) throw badRequest(`${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(text)}.`);
  return n;
}

function decisionOf(text: string): AuditDecision {
  if (!(AUDIT_DECISIONS as readonly string[]).includes(text)) throw badRequest(`decision must be one of ${AUDIT_DECISIONS.join(", ")}, not ${JSON.stringify(text)}.`);
  return text as AuditDecision;
}

function sinceOf(text: string): Date {
  if (/^\s*\d+(\.\d+)?\s*(ms|s|m|h)\s*$/.test(text)) return new Date(Date.now() - parseDuration(text, "since"));
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) throw badRequest(`since needs a date like 2025-06-01T12:00:00Z or a duration like 2h, not ${JSON.stringify(text)}.`);
  return d;
}
