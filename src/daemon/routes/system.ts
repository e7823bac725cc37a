/** GET /health and GET /metrics. */
import type { DaemonApp, DaemonContext } from "../context.js";
import { DAEMON_VERSION } from "../context.js";

/** Mount /health and /metrics. */
export function systemRoutes(app: DaemonApp, ctx: DaemonContext): void {
  app.get("/health", async (c) =>
    c.json({
      ok: !ctx.shutdown.aborted,
      version: DAEMON_VERSION,
      pid: process.pid,
      backends: await ctx.sandboxes.backends(),
      uptime: Math.round((Date.now() - ctx.startedAt.getTime()) / 1000),
      startedAt: ctx.startedAt.toISOString(),
      agent: ctx.tasks() !== undefined,
      servers: ctx.hub.status().map((s) => ({ name: s.name, state: s.state, where: s.where, tools: s.tools, lastError: s.lastError ?? null })),
    }),
  );
  app.get("/metrics", async (c) => {
    const text = await ctx.metrics.text();
    return c.body(text, 200, { "content-type": ctx.metrics.registry.contentType });
  });
}
