/**
 * The shapes the warm pool reports: its stats snapshot (DESIGN.md "Pool stats",
 * also exported as Prometheus metrics) and the events it emits for logs and metrics.
 */

/**
 * A snapshot of one pool. Counting rule: every sandbox the pool answers for is either
 * `idle` or `active`, and `active + idle <= max` (only `register()` may push past it).
 */
export interface PoolStats {
  /** Sandboxes in use or in transition: leased + registered + being created + being destroyed. */
  active: number;
  /** Warm sandboxes, created and unused, ready for an immediate lease. */
  idle: number;
  /** Callers waiting for a sandbox (in the pool's queue, plus tasks counted by `trackQueued`). */
  queued: number;
  /** Sandboxes handed out by `lease()` and not yet released. */
  leased: number;
  /** Leases served by a sandbox that was not created for that lease (warm or left over). */
  hits: number;
  /** Leases that had to wait for a sandbox created for them. */
  misses: number;
  /** Successful `backend.create` calls. */
  spawned: number;
  /** Successful `sandbox.destroy` calls. */
  destroyed: number;
  /** `backend.create` durations of recent successful spawns, in milliseconds. */
  spawnMs: { p50: number; p95: number; p99: number };
  /** Time from `lease()` to getting a sandbox, for recent successful leases, in milliseconds. */
  leaseWaitMs: { p50: number; p95: number };
  /** Sandbox creations in flight (included in `active`). */
  creating: number;
  /** Failed `backend.create` calls. */
  spawnErrors: number;
  /** Failed `sandbox.destroy` calls (the slot is freed anyway; the error is in the event). */
  destroyErrors: number;
}

/** What the pool reports as it works; keep listeners cheap, they run synchronously. */
export type PoolEvent =
  | { type: "spawned"; sandboxId: string; ms: number; warm: boolean }
  | { type: "spawnError"; error: unknown; warm: boolean; retryInMs: number | undefined }
  | { type: "lease"; sandboxId: string; hit: boolean; waitedMs: number }
  | { type: "release"; sandboxId: string; heldMs: number }
  | { type: "destroyed"; sandboxId: string }
  | { type: "destroyError"; sandboxId: string; error: unknown };
