/**
 * Prometheus metrics of one daemon, in its own Registry (never the global
 * one, so two daemons in one test process do not collide). Counters move on
 * events (pool, approval queue, hub calls); gauges are read at scrape time.
 */
import { createHash } from "node:crypto";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { AuditEntryInput } from "../approval/audit/types.js";
import type { QueueEvent } from "../approval/queue.js";
import type { PoolEvent } from "../sandbox/pool.js";
import type { BackendName } from "../sandbox/types.js";
import type { DaemonSandboxes } from "./sandboxes.js";

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const RESPONSE_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 900, 3600];

/** The daemon's metrics and the hooks that feed them. */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly #poolEvents: Counter<"backend" | "kind">;
  readonly #spawnSeconds: Histogram<"backend">;
  readonly #restoreSeconds: Histogram<"backend">;
  readonly #leaseWait: Histogram<"backend">;
  readonly #approvals: Counter<"decision" | "decided_by">;
  readonly #approvalSeconds: Histogram<"decision">;
  readonly #calls: Counter<"server" | "tool" | "decision" | "status">;
  readonly #callSeconds: Histogram<"server">;
  readonly #requests: Counter<"route" | "method" | "status">;
  readonly #rateLimited: Counter<"kind">;

  constructor(opts: { sandboxes: DaemonSandboxes; pendingApprovals: () => number }) {
    const registers = [this.registry];
    const poolGauge = (name: string, help: string, read: (s: ReturnType<DaemonSandboxes["poolStats"]>[number]["stats"]) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ["backend", "pool"] as const,
        registers,
        collect() {
          this.reset();
          for (const p of opts.sandboxes.poolStats()) this.set({ backend: p.backend, pool: p.default ? "default" : createHash("sha256").update(p.key).digest("hex").slice(0, 8) }, read(p.stats));
        },
      });
    };
    poolGauge("luminaguard_pool_active", "Sandboxes in use or in transition (leased, being created or destroyed).", (s) => s.active);
    poolGauge("luminaguard_pool_idle", "Warm sandboxes ready for an immediate lease.", (s) => s.idle);
    poolGauge("luminaguard_pool_queued", "Callers waiting for a sandbox.", (s) => s.queued);
    poolGauge("luminaguard_pool_leased", "Sandboxes handed out and not released yet (part of active).", (s) => s.leased);
    this.#poolEvents = new Counter({ name: "luminaguard_pool_events_total", help: "Pool events: hits, misses, spawned, destroyed, spawn and destroy errors.", labelNames: ["backend", "kind"] as const, registers });
    this.#spawnSeconds = new Histogram({ name: "luminaguard_sandbox_spawn_seconds", help: "Time to create a sandbox (backend.create).", labelNames: ["backend"] as const, buckets: LATENCY_BUCKETS, registers });
    this.#restoreSeconds = new Histogram({ name: "luminaguard_sandbox_restore_seconds", help: "Time to restore a micro-VM sandbox from its snapshot template.", labelNames: ["backend"] as const, buckets: LATENCY_BUCKETS, registers });
    this.#leaseWait = new Histogram({ name: "luminaguard_pool_lease_wait_seconds", help: "Time from asking the pool for a sandbox to getting one.", labelNames: ["backend"] as const, buckets: LATENCY_BUCKETS, registers });
    this.#approvals = new Counter({ name: "luminaguard_approvals_total", help: "Red calls decided, by decision and by who decided.", labelNames: ["decision", "decided_by"] as const, registers });
    this.#approvalSeconds = new Histogram({ name: "luminaguard_approval_response_seconds", help: "Time a red call waited for its decision.", labelNames: ["decision"] as const, buckets: RESPONSE_BUCKETS, registers });
    new Gauge({
      name: "luminaguard_approvals_pending",
      help: "Red calls waiting for a decision now.",
      registers,
      collect() {
        this.set(opts.pendingApprovals());
      },
    });
    this.#calls = new Counter({ name: "luminaguard_mcp_calls_total", help: "MCP tool calls through the hub, by server, tool, decision and status (ok or error).", labelNames: ["server", "tool", "decision", "status"] as const, registers });
    this.#callSeconds = new Histogram({ name: "luminaguard_mcp_call_seconds", help: "MCP tool call latency through the hub (approval wait included).", labelNames: ["server"] as const, buckets: LATENCY_BUCKETS, registers });
    new Gauge({
      name: "luminaguard_firewall_connections",
      help: "Connections allowed and denied in the API's live networked sandboxes, by layer (firewall: IP rules; proxy: names).",
      labelNames: ["layer", "verdict"] as const,
      registers,
      async collect() {
        const s = await opts.sandboxes.networkStats();
        this.set({ layer: "firewall", verdict: "allow" }, s.firewallAllowed);
        this.set({ layer: "firewall", verdict: "deny" }, s.firewallDenied);
        this.set({ layer: "proxy", verdict: "allow" }, s.proxyAllowed);
        this.set({ layer: "proxy", verdict: "deny" }, s.proxyDenied);
      },
    });
    this.#requests = new Counter({ name: "luminaguard_http_requests_total", help: "HTTP API requests by route, method and status.", labelNames: ["route", "method", "status"] as const, registers });
    this.#rateLimited = new Counter({ name: "luminaguard_rate_limited_total", help: "Requests refused by a rate limit, by kind.", labelNames: ["kind"] as const, registers });
  }

  /** Feed a pool event. */
  pool(event: PoolEvent, backend: BackendName): void {
    switch (event.type) {
      case "spawned":
        this.#poolEvents.inc({ backend, kind: "spawned" });
        this.#spawnSeconds.observe({ backend }, event.ms / 1000);
        // A micro-VM sandbox made by the pool is a restore from the snapshot template.
        if (backend === "microvm") this.#restoreSeconds.observe({ backend }, event.ms / 1000);
        break;
      case "lease":
        this.#poolEvents.inc({ backend, kind: event.hit ? "hit" : "miss" });
        this.#leaseWait.observe({ backend }, event.waitedMs / 1000);
        break;
      case "destroyed":
        this.#poolEvents.inc({ backend, kind: "destroyed" });
        break;
      case "spawnError":
        this.#poolEvents.inc({ backend, kind: "spawn_error" });
        break;
      case "destroyError":
        this.#poolEvents.inc({ backend, kind: "destroy_error" });
        break;
      case "release":
        break;
    }
  }

  /** Feed an approval queue event. */
  approval(event: QueueEvent): void {
    if (event.type !== "decided") return;
    const decision = event.decision.approved ? "approved" : "denied";
    this.#approvals.inc({ decision, decided_by: event.decision.by.split(":")[0] ?? "unknown" });
    this.#approvalSeconds.observe({ decision }, Math.max(0, (Date.now() - Date.parse(event.entry.createdAt)) / 1000));
  }

  /** Feed a hub "call" event (one per tool call, as audited). */
  call(entry: AuditEntryInput): void {
    this.#calls.inc({ server: entry.server, tool: entry.tool, decision: entry.decision, status: entry.error ? "error" : "ok" });
    this.#callSeconds.observe({ server: entry.server }, entry.latencyMs / 1000);
  }

  /** Count one answered HTTP request (route is the pattern, never the raw path: ids would explode cardinality). */
  request(route: string, method: string, status: number): void {
    this.#requests.inc({ route, method, status: String(status) });
  }

  /** Count a refused request. */
  rateLimited(kind: string): void {
    this.#rateLimited.inc({ kind });
  }

  /** The text exposition format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
