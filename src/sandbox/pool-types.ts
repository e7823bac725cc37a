/**
 * The public shapes of the warm pool: its options, lease options and the lease itself.
 * Kept apart from pool.ts so helpers (pool-waiter.ts) can name them without a cycle.
 */
import type { PoolEvent } from "./pool-stats.js";
import type { Backend, Sandbox, SandboxSpec } from "./types.js";

export interface PoolOptions {
  backend: Backend;
  spec: SandboxSpec;
  /** Idle sandboxes to keep ready once `start()` ran. */
  min: number;
  /** Most sandboxes alive at once, idle ones included. */
  max: number;
  /** Most callers waiting once `max` is reached; the next gets E_POOL_FULL. */
  maxQueue: number;
  /** Default wait limit of `lease()` in ms (default 60 000; Infinity waits forever). */
  leaseTimeoutMs?: number;
  /**
   * How often idle sandboxes are checked for having broken on their own (a VM or
   * sentry that died while waiting), so the warm set is refilled without waiting
   * for the next lease to find them (default 5000 ms; 0: only at lease time).
   */
  idleCheckMs?: number;
  /** Pause before refilling after a failed create: doubles from initialMs (200) up to maxMs (30 000). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Receives every event, e.g. to log it. */
  logger?: (event: PoolEvent) => void;
  /** Receives every event, e.g. to update metrics. */
  onEvent?: (event: PoolEvent) => void;
}

export interface LeaseOptions {
  /** Stop waiting (E_POOL_ABORTED) when this aborts. */
  signal?: AbortSignal;
  /** Stop waiting (E_POOL_TIMEOUT) after this many ms; 0 means "only if one is free now". */
  timeoutMs?: number;
}

/** One sandbox handed out by the pool; use it for one task, then release it. */
export interface Lease {
  readonly sandbox: Sandbox;
  /** True when the sandbox was not created for this lease (it was warm or left over). */
  readonly hit: boolean;
  /** How long `lease()` took, in ms. */
  readonly waitedMs: number;
  /** Destroy the sandbox and free its slot; resolves when it is gone, never rejects, safe to call twice. */
  release(): Promise<void>;
}
