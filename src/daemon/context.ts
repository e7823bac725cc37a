/** What every route of the daemon's HTTP API works with; built once by the Daemon. */
import type { Hono } from "hono";
import type { HttpBindings } from "@hono/node-server";
import type { ApprovalQueue } from "../approval/queue.js";
import type { AuditStore } from "../approval/audit/store.js";
import type { Config } from "../config/schema.js";
import type { McpHub } from "../mcp/hub.js";
import type { EventBus } from "./events.js";
import type { DaemonMetrics } from "./metrics.js";
import type { RateLimiter } from "./rate-limit.js";
import type { DaemonSandboxes } from "./sandboxes.js";
import type { TaskRunner } from "./tasks.js";

/** The daemon's version, as /health and the MCP gateway report it. */
export const DAEMON_VERSION = "0.1.0";

export interface DaemonContext {
  config: Config;
  sandboxes: DaemonSandboxes;
  queue: ApprovalQueue;
  hub: McpHub;
  audit: AuditStore;
  events: EventBus;
  metrics: DaemonMetrics;
  limiter: RateLimiter;
  /** The agent, once plugged in (Daemon.setTaskRunner). */
  tasks(): TaskRunner | undefined;
  startedAt: Date;
  /** Aborts when shutdown begins: long streams (SSE, exec) end on it. */
  shutdown: AbortSignal;
}

/** Which listener a request came in on. */
export type Via = "unix" | "tcp";

/** The hono environment of the daemon's app. */
export interface DaemonEnv {
  Bindings: HttpBindings & { via: Via };
  Variables: {
    /** The rate-limit and audit identity: "local" on the Unix socket, "tcp:<address>" on TCP. */
    client: string;
  };
}

export type DaemonApp = Hono<DaemonEnv>;
