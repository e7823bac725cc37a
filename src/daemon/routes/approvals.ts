/**
 * /v1/approvals: the pending red calls with their Diff Cards, approved by naming
 * the card's hash (so an approval is bound to the exact call) or denied.
 */
import * as z from "zod/mini";
import { cardJson } from "../../approval/render.js";
import type { PendingEntry } from "../../approval/queue.js";
import type { DaemonApp, DaemonContext } from "../context.js";
import { readJson } from "./body.js";

const approveSchema = z.strictObject({
  hash: z.string().check(z.regex(/^[0-9a-f]{64}$/, "hash must be the card's sha256 (64 hex characters), as GET /v1/approvals shows it")),
  reason: z.optional(z.string().check(z.maxLength(2_000))),
});
const denySchema = z.strictObject({ reason: z.optional(z.string().check(z.maxLength(2_000))) });

/** A pending entry as JSON: the card as the web page and API clients read it. */
export function pendingJson(e: PendingEntry): Record<string, unknown> {
  return { id: e.id, session: e.session, createdAt: e.createdAt, expiresAt: e.expiresAt, hash: e.card.hash, summary: e.card.summary, cardJson: cardJson(e.card) };
}

/** Mount the approval routes. */
export function approvalRoutes(app: DaemonApp, ctx: DaemonContext): void {
  app.get("/v1/approvals", (c) => c.json({ pending: ctx.queue.list().map(pendingJson) }));
  app.post("/v1/approvals/:id/approve", async (c) => {
    const body = await readJson(c, approveSchema);
    const decision = ctx.queue.approve(c.req.param("id"), { hash: body.hash, by: `api:${c.get("client")}`, reason: body.reason });
    return c.json({ id: c.req.param("id"), decision });
  });
  app.post("/v1/approvals/:id/deny", async (c) => {
    const body = await readJson(c, denySchema, { optional: true });
    const reason = body.reason ? `denied by user: ${body.reason}` : undefined;
    const decision = ctx.queue.deny(c.req.param("id"), { by: `api:${c.get("client")}`, reason });
    return c.json({ id: c.req.param("id"), decision });
  });
}
