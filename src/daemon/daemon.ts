/**
 * The daemon: one process that keeps the warm pool and the MCP hub running and
 * serves them over HTTP (Unix socket, optionally loopback TCP with a token),
 * with the approval queue, the audit log, runtime events, metrics and webhooks.
 * Everything it starts, stop() ends: no sandbox or server process outlives it.
 */
import { unlinkSync } from "node:fs";
import { ApprovalQueue } from "../approval/queue.js";
import { chooseApprover } from "../approval/choose.js";
import { AuditStore } from "../approval/audit/store.js";
import { auditPath, redactPatterns } from "../approval/audit/config.js";
import type { Config } from "../config/schema.js";
import { McpHub } from "../mcp/hub.js";
import { BackendSandboxes, type SandboxSource } from "../mcp/sandboxes.js";
import type { Backend, BackendName } from "../sandbox/types.js";
import { createApp } from "./app.js";
import type { DaemonContext } from "./context.js";
import { DaemonError } from "./errors.js";
import { EventBus } from "./events.js";
import { InFlight, claimSocket, defaultSocketPath, listenTcp, listenUnix, type Listener } from "./listen.js";
import { DaemonMetrics } from "./metrics.js";
import { RateLimiter } from "./rate-limit.js";
import type { McpSessions } from "./routes/mcp.js";
import { DaemonSandboxes } from "./sandboxes.js";
import { closeInterruptedTasks } from "./interrupted.js";
import { setTranscriptOwnerKind, tasksDir } from "../agent/transcript.js";
import type { TaskRunner } from "./tasks.js";
import { DeadLetters } from "./webhooks/dead-letters.js";
import { WebhookDispatcher } from "./webhooks/dispatcher.js";

export interface DaemonOptions {
  config: Config;
  /** Unix socket path; default daemon.socket, else <runtimeDir>/daemon.sock. */
  socketPath?: string | undefined;
  /** TCP listener; default daemon.tcp. A token is required. */
  tcp?: { port: number; host?: string | undefined; token?: string | undefined } | undefined;
  /** The agent (also later with setTaskRunner). */
  taskRunner?: TaskRunner | undefined;
  /** Progress lines (default: stderr). */
  log?: ((line: string) => void) | undefined;
  /** Tests: where API sandboxes' backends come from. */
  backend?: ((name: BackendName) => Promise<Backend>) | undefined;
  /** Tests: where MCP servers' sandboxes come from. */
  hubSandboxes?: SandboxSource | undefined;
  /** Tests: the dead-letter list (default in the state folder). */
  deadLetters?: DeadLetters | undefined;
}

/** A running daemon. */
export class Daemon {
  readonly socketPath: string;
  /** http://host:port when TCP is served. */
  readonly tcpUrl: string | undefined;
  readonly port: number | undefined;
  readonly queue: ApprovalQueue;
  readonly hub: McpHub;
  readonly events: EventBus;
  readonly metrics: DaemonMetrics;
  readonly sandboxes: DaemonSandboxes;
  readonly audit: AuditStore;
  readonly webhooks: WebhookDispatcher;
  readonly #ctx: DaemonContext;
  readonly #listeners: Listener[];
  readonly #inflight: InFlight;
  readonly #mcp: McpSessions;
  readonly #abort: AbortController;
  readonly #log: (line: string) => void;
  #runner: TaskRunner | undefined;
  #unsubscribeRunner: (() => void) | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(parts: {
    socketPath: string;
    listeners: Listener[];
    ctx: DaemonContext;
    inflight: InFlight;
    mcp: McpSessions;
    abort: AbortController;
    webhooks: WebhookDispatcher;
    log: (line: string) => void;
  }) {
    this.socketPath = parts.socketPath;
    this.#listeners = parts.listeners;
    const tcp = parts.listeners.find((l) => l.via === "tcp");
    this.tcpUrl = tcp?.where;
    this.port = tcp?.port;
    this.#ctx = parts.ctx;
    this.queue = parts.ctx.queue;
    this.hub = parts.ctx.hub;
    this.events = parts.ctx.events;
    this.metrics = parts.ctx.metrics;
    this.sandboxes = parts.ctx.sandboxes;
    this.audit = parts.ctx.audit;
    this.webhooks = parts.webhooks;
    this.#inflight = parts.inflight;
    this.#mcp = parts.mcp;
    this.#abort = parts.abort;
    this.#log = parts.log;
  }

  /** Start everything and listen; on any failure, what was started is stopped again. */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const { config } = opts;
    const log = opts.log ?? ((line: string) => void process.stderr.write(`luminaguard daemon: ${line}\n`));
    const socketPath = opts.socketPath ?? config.daemon.socket ?? defaultSocketPath();
    const tcp = opts.tcp ?? config.daemon.tcp;
    if (tcp && !tcp.token) {
      throw new DaemonError("E_DAEMON_TCP_TOKEN", "Serving TCP needs a bearer token: pass --token <at least 16 characters> or set daemon.tcp.token (or LUMINAGUARD_DAEMON__TCP__TOKEN). Without TCP the Unix socket needs none.");
    }
    if (tcp?.token !== undefined && tcp.token.length < 16) throw new DaemonError("E_DAEMON_TCP_TOKEN", "The TCP bearer token must be at least 16 characters (e.g. `openssl rand -hex 24`).");
    // Before starting anything heavy: a second daemon must fail fast and touch nothing.
    await claimSocket(socketPath);
    // Tasks a dead daemon left mid-way would read "running" forever: close them with the reason.
    setTranscriptOwnerKind("daemon");
    for (const t of await closeInterruptedTasks(tasksDir(config.audit.path))) log(`task ${t.id}: ${t.reason}; marked failed`);

    const audit = AuditStore.open(config.audit.path ?? auditPath(), { redact: redactPatterns(config.audit) });
    const queue = new ApprovalQueue();
    const events = new EventBus();
    const abort = new AbortController();
    const hub = new McpHub({
      config: config.mcp,
      gate: { rules: config.approval.rules, workspaceRoots: config.approval.workspaceRoots, timeoutMs: config.approval.timeoutSeconds * 1000, approver: chooseApprover(config.approval, { queue }) },
      audit,
      sandboxes: opts.hubSandboxes ?? new BackendSandboxes({ sandboxUid: config.sandbox.uid, microvm: config.microvm }),
      session: "daemon",
    });
    // `metrics` is made right below; the pool's events only fire once start() runs.
    const sandboxes = new DaemonSandboxes({
      config,
      backend: opts.backend,
      onPoolEvent: (e, backend) => {
        metrics.pool(e, backend);
        const { type, ...rest } = e;
        events.publish(`pool.${type}`, { backend, ...rest, ...("error" in e ? { error: String((e.error as Error)?.message ?? e.error) } : {}) });
      },
    });
    const metrics = new DaemonMetrics({ sandboxes, pendingApprovals: () => queue.list().length });
    const m = metrics;
    queue.subscribe((e) => {
      m.approval(e);
      events.publish(`approval.${e.type}`, { id: e.entry.id, hash: e.entry.card.hash, server: e.entry.card.server, tool: e.entry.card.tool, summary: e.entry.card.summary, session: e.entry.session, ...(e.type === "decided" ? { decision: e.decision } : { expiresAt: e.entry.expiresAt }) });
    });
    hub.on("call", (entry) => {
      m.call(entry);
      events.publish("mcp.call", { server: entry.server, tool: entry.tool, verdict: entry.verdict, risk: entry.risk, decision: entry.decision, decidedBy: entry.decidedBy, latencyMs: entry.latencyMs, error: entry.error });
    });
    const webhooks = new WebhookDispatcher({
      hooks: config.daemon.webhooks,
      retry: config.daemon.webhookRetry,
      deadLetters: opts.deadLetters ?? new DeadLetters(),
      onDeadLetter: (l) => log(`webhook ${l.event} to ${l.url} failed ${l.attempts} times (${l.lastError}); kept as dead letter ${l.id}`),
    });
    events.subscribe((e) => webhooks.handle(e));

    const ctx: DaemonContext = {
      config,
      sandboxes,
      queue,
      hub,
      audit,
      events,
      metrics,
      limiter: new RateLimiter(config.daemon.rateLimits),
      // Replaced once the Daemon exists: setTaskRunner decides what it returns.
      tasks: () => undefined,
      startedAt: new Date(),
      shutdown: abort.signal,
    };
    const { app, mcp } = createApp(ctx, { tcpToken: tcp?.token });
    const inflight = new InFlight();
    const listeners: Listener[] = [];
    try {
      await Promise.all([hub.start(), sandboxes.start()]);
      for (const s of hub.status()) log(`MCP server ${s.name}: ${s.state}${s.state === "ready" ? ` (${s.tools} tools)` : s.lastError ? ` - ${s.lastError}` : ""}`);
      const def = sandboxes.poolStats().find((p) => p.default);
      if (def) log(`sandbox pool (${def.backend}): ${def.stats.idle} warm, max ${config.pool.max}`);
      listeners.push(await listenUnix(app, socketPath, inflight));
      if (tcp) listeners.push(await listenTcp(app, tcp.host ?? "127.0.0.1", tcp.port, inflight));
    } catch (err) {
      abort.abort();
      await Promise.all(listeners.map((l) => new Promise<void>((r) => l.server.close(() => r()))));
      if (listeners.length > 0) removeSocket(socketPath);
      await hub.close().catch(() => undefined);
      await sandboxes.close().catch(() => undefined);
      audit.close();
      throw err;
    }
    for (const l of listeners) log(`listening on ${l.where}${l.via === "tcp" ? ` (bearer token required; dashboard: ${l.where}/ui/#token=<daemon.tcp.token>)` : ""}`);
    const daemon = new Daemon({ socketPath, listeners, ctx, inflight, mcp, abort, webhooks, log });
    ctx.tasks = () => daemon.#runner;
    if (opts.taskRunner) daemon.setTaskRunner(opts.taskRunner);
    return daemon;
  }

  /** Plug in the agent: task routes start working and its events reach the stream and webhooks. */
  setTaskRunner(runner: TaskRunner): void {
    this.#unsubscribeRunner?.();
    this.#runner = runner;
    this.#unsubscribeRunner = runner.subscribe((e) => this.events.publish(`task.${e.type}`, { taskId: e.taskId, ...e.data }));
  }

  /** Requests whose responses are not finished. */
  get inFlight(): number {
    return this.#inflight.count;
  }

  /**
   * Graceful shutdown: stop accepting, deny pending approvals, cancel tasks, wait
   * for requests up to daemon.shutdownTimeoutSeconds, then close MCP sessions, the
   * hub (its sandboxes), the pools, webhooks and the audit log, and remove the socket.
   */
  stop(): Promise<void> {
    return (this.#stopping ??= this.#shutdown());
  }

  async #shutdown(): Promise<void> {
    const boundMs = this.#ctx.config.daemon.shutdownTimeoutSeconds * 1000;
    const deadline = Date.now() + boundMs;
    const left = (): number => Math.max(0, deadline - Date.now());
    this.#log("shutting down");
    this.#abort.abort();
    const closed = this.#listeners.map((l) => new Promise<void>((r) => l.server.close(() => r())));
    for (const e of this.queue.list()) this.queue.withdraw(e.id, { approved: false, by: "shutdown", reason: "denied: the LuminaGuard daemon is shutting down", hash: e.card.hash });
    if (this.#runner) await withTimeout(this.#runner.cancelAll().catch(() => undefined), left());
    this.#unsubscribeRunner?.();
    const drained = await this.#inflight.drained(left());
    if (!drained) this.#log(`cut off ${this.#inflight.count} request(s) still running after ${boundMs / 1000} s`);
    for (const l of this.#listeners) l.server.closeAllConnections();
    await Promise.all(closed);
    await this.#mcp.closeAll();
    await this.hub.close().catch((err: unknown) => this.#log(`closing MCP servers: ${(err as Error).message}`));
    await this.sandboxes.close().catch((err: unknown) => this.#log(`closing sandboxes: ${(err as Error).message}`));
    await this.webhooks.close(Math.min(left(), 2_000));
    this.audit.close();
    removeSocket(this.socketPath);
    this.#log("stopped");
  }
}

function removeSocket(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]).finally(() => clearTimeout(timer));
}
