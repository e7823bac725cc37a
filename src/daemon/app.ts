/**
 * The daemon's HTTP API as one hono app: error and auth conventions, rate
 * limits, then the routes. The same app serves the Unix socket (no token: the
 * socket's file mode says who may connect) and the TCP port (bearer token).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { DaemonApp, DaemonContext, DaemonEnv } from "./context.js";
import type { RateLimitKind } from "./config.js";
import { DaemonError, errorBody, httpStatusFor } from "./errors.js";
import { approvalRoutes } from "./routes/approvals.js";
import { auditRoutes } from "./routes/audit.js";
import { eventRoutes } from "./routes/events.js";
import { mcpRoutes, type McpSessions } from "./routes/mcp.js";
import { sandboxRoutes } from "./routes/sandboxes.js";
import { staticRoutes } from "./routes/static.js";
import { systemRoutes } from "./routes/system.js";
import { taskRoutes } from "./routes/tasks.js";

/** Largest request body: a file upload up to the sandbox's own limit, plus JSON slack. */
const MIN_BODY_LIMIT = 4 * 1024 * 1024;

export interface AppOptions {
  /** Bearer token required on TCP; undefined means TCP is not served. */
  tcpToken?: string | undefined;
}

/** Build the app; returns it and its MCP sessions (closed on shutdown). */
export function createApp(ctx: DaemonContext, opts: AppOptions): { app: DaemonApp; mcp: McpSessions } {
  const app = new Hono<DaemonEnv>();
  const tokenDigest = opts.tcpToken === undefined ? undefined : digest(opts.tcpToken);

  app.onError((err, c) => {
    const status = httpStatusFor(err);
    if (status >= 500 && !(err instanceof DaemonError)) process.stderr.write(`luminaguard daemon: ${c.req.method} ${c.req.path}: ${(err as Error).message}\n`);
    return c.json(errorBody(err), status as 400);
  });
  app.notFound((c) => c.json(errorBody(new DaemonError("E_DAEMON_NOT_FOUND", `No route ${c.req.method} ${c.req.path}; the API is under /v1/ (see docs/daemon.md).`)), 404));

  // Who is asking: every Unix socket peer is the local user; TCP clients by address.
  app.use("*", async (c, next) => {
    c.set("client", c.env.via === "unix" ? "local" : `tcp:${c.env.incoming.socket.remoteAddress ?? "unknown"}`);
    await next();
    ctx.metrics.request(c.req.routePath, c.req.method, c.res.status);
  });

  app.use("*", async (c, next) => {
    limit(c, "api");
    // Checked after the rate limit, so guessing tokens is rate limited too.
    if (c.env.via === "tcp" && !c.req.path.startsWith("/ui/") && c.req.path !== "/") {
      const given = /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
      if (tokenDigest === undefined || given === undefined || !timingSafeEqual(digest(given.trim()), tokenDigest)) {
        c.header("www-authenticate", 'Bearer realm="luminaguard"');
        throw new DaemonError("E_DAEMON_UNAUTHORIZED", "Missing or wrong bearer token: send `Authorization: Bearer <daemon.tcp.token>` (or use the Unix socket).");
      }
    }
    if (ctx.shutdown.aborted) throw new DaemonError("E_DAEMON_SHUTTING_DOWN", "The daemon is shutting down; retry once it is running again.");
    await next();
  });

  app.post("/v1/sandboxes", async (c, next) => {
    limit(c, "sandboxSpawn");
    await next();
  });
  app.post("/v1/approvals/*", async (c, next) => {
    limit(c, "approval");
    await next();
  });
  const maxSize = Math.max(MIN_BODY_LIMIT, ctx.config.sandbox.maxFileBytes + 64 * 1024);
  app.use(
    "/v1/*",
    bodyLimit({
      maxSize,
      onError: (c) => c.json(errorBody(new DaemonError("E_DAEMON_BODY_TOO_LARGE", `The request body is over ${maxSize} bytes; send less (files over sandbox.maxFileBytes cannot be written anyway).`)), 413),
    }),
  );

  staticRoutes(app);
  systemRoutes(app, ctx);
  sandboxRoutes(app, ctx);
  taskRoutes(app, ctx);
  approvalRoutes(app, ctx);
  auditRoutes(app, ctx);
  eventRoutes(app, ctx);
  const mcp = mcpRoutes(app, ctx);

  function limit(c: Context<DaemonEnv>, kind: RateLimitKind): void {
    const client = c.get("client");
    const d = ctx.limiter.take(client, kind);
    if (d.ok) return;
    ctx.metrics.rateLimited(kind);
    c.header("retry-after", String(d.retryAfterSeconds));
    throw new DaemonError("E_DAEMON_RATE_LIMITED", `Too many ${kind} requests from ${client}; retry in ${d.retryAfterSeconds} s (limits: daemon.rateLimits.${kind}).`, {
      details: { kind, retryAfterSeconds: d.retryAfterSeconds },
    });
  }

  return { app, mcp };
}

function digest(s: string): Buffer {
  // Hashing both sides first makes the compare constant-time whatever the lengths.
  return createHash("sha256").update(s).digest();
}
