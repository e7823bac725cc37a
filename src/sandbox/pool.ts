/**
 * The warm pool for one sandbox spec: keeps `min` sandboxes created and idle so a
 * tool call rarely waits for a boot, caps how many exist at once at `max`, and
 * queues callers (FIFO, bounded) when the cap is reached.
 *
 * Sandboxes are single-use: releasing a lease destroys the sandbox, and the pool
 * refills in the background. Counting: every sandbox the pool answers for is idle
 * or active (leased, registered, being created, being destroyed), and
 * `idle + active <= max`, so `max` bounds real host resources, teardown included.
 */
import { UsageError } from "../errors.js";
import { SampleWindow } from "./percentiles.js";
import { checkTimeout, poolAbortedError, poolClosedError, poolFullError, poolTimeoutError } from "./pool-errors.js";
import { createWaiter, type Waiter } from "./pool-waiter.js";
import type { PoolEvent, PoolStats } from "./pool-stats.js";
import type { Lease, LeaseOptions, PoolOptions } from "./pool-types.js";
import type { Backend, Sandbox, SandboxSpec } from "./types.js";

export type { PoolEvent, PoolStats } from "./pool-stats.js";
export type { Lease, LeaseOptions, PoolOptions } from "./pool-types.js";

const DEFAULT_LEASE_TIMEOUT_MS = 60_000;
const DEFAULT_BACKOFF_INITIAL_MS = 200;
const DEFAULT_BACKOFF_MAX_MS = 30_000;
/** How often idle sandboxes are checked for having broken while they wait. */
const DEFAULT_IDLE_CHECK_MS = 5_000;

/** An idle sandbox that cannot be handed out: destroyed behind the pool's back, or broken on its own (a dead VM). */
function diedWhileIdle(sb: Sandbox): boolean {
  return sb.destroyed || sb.broken !== undefined;
}

/** A warm, bounded, single-use pool of sandboxes for one spec. */
export class SandboxPool {
  readonly spec: SandboxSpec;
  private readonly backend: Backend;
  private readonly min: number;
  private readonly max: number;
  private readonly maxQueue: number;
  private readonly leaseTimeoutMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly listeners: ((event: PoolEvent) => void)[];

  private readonly idle: Sandbox[] = [];
  private readonly leases = new Map<Sandbox, Lease>();
  private readonly registered = new Set<Sandbox>();
  /** Waiters with no sandbox in sight yet, oldest first. */
  private readonly queue: Waiter[] = [];
  /** Every unsettled waiter: queued ones and those whose sandbox is being created. */
  private readonly waiters = new Set<Waiter>();
  /** Creations and destructions in flight; close() drains them. Their promises never reject. */
  private readonly inflight = new Set<Promise<void>>();

  private creating = 0;
  private warmCreating = 0;
  private destroying = 0;
  private externalQueued = 0;
  private readonly counters = { hits: 0, misses: 0, spawned: 0, destroyed: 0, spawnErrors: 0, destroyErrors: 0 };
  private readonly spawnSamples = new SampleWindow(1024);
  private readonly waitSamples = new SampleWindow(1024);

  private started = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  private readonly idleCheckMs: number;
  private idleTimer: NodeJS.Timeout | undefined;
  private backoffLevel = 0;
  private backoffDelayMs = 0;

  constructor(opts: PoolOptions) {
    const { min, max, maxQueue } = opts;
    if (!Number.isInteger(max) || max < 1) throw new UsageError(`pool.max must be an integer >= 1, got ${max}.`);
    if (!Number.isInteger(min) || min < 0 || min > max) {
      throw new UsageError(`pool.min must be an integer between 0 and pool.max (${max}), got ${min}.`);
    }
    if (!Number.isInteger(maxQueue) || maxQueue < 0) {
      throw new UsageError(`pool.maxQueue must be an integer >= 0, got ${maxQueue}.`);
    }
    this.leaseTimeoutMs = checkTimeout(opts.leaseTimeoutMs ?? DEFAULT_LEASE_TIMEOUT_MS, "pool.leaseTimeoutMs");
    this.backend = opts.backend;
    this.spec = opts.spec;
    this.min = min;
    this.max = max;
    this.maxQueue = maxQueue;
    this.backoffInitialMs = Math.max(1, opts.backoff?.initialMs ?? DEFAULT_BACKOFF_INITIAL_MS);
    this.backoffMaxMs = Math.max(this.backoffInitialMs, opts.backoff?.maxMs ?? DEFAULT_BACKOFF_MAX_MS);
    this.listeners = [opts.logger, opts.onEvent].filter((l) => l !== undefined);
    this.idleCheckMs = Math.max(0, opts.idleCheckMs ?? DEFAULT_IDLE_CHECK_MS);
  }

  /** Start keeping `min` warm; resolves when the first fill round settled (never rejects on create errors). */
  async start(): Promise<void> {
    if (this.closed) throw poolClosedError();
    this.started = true;
    if (this.idleCheckMs > 0 && !this.idleTimer) this.idleTimer = setInterval(() => this.dropBrokenIdle(), this.idleCheckMs).unref();
    this.pump();
    await Promise.all(this.inflight);
  }

  /** Get a sandbox: an idle one at once, a new one while under `max`, else wait in the FIFO queue. */
  async lease(opts: LeaseOptions = {}): Promise<Lease> {
    const startedAt = performance.now();
    const timeoutMs = checkTimeout(opts.timeoutMs ?? this.leaseTimeoutMs, "timeoutMs");
    if (this.closed) throw poolClosedError();
    if (opts.signal?.aborted) throw poolAbortedError(opts.signal);
    // Queued callers come first; the pump keeps "idle sandboxes and queued callers" from coexisting.
    if (this.queue.length === 0) {
      const warm = this.takeIdle();
      if (warm) {
        const lease = this.grant(warm, startedAt, true);
        this.pump();
        return lease;
      }
    }
    const atCap = this.queue.length > 0 || this.total() >= this.max;
    if (atCap && this.queue.length >= this.maxQueue) {
      throw poolFullError(this.max, this.maxQueue, this.active(), this.queue.length);
    }
    const signal = opts.signal;
    const waiter = createWaiter(
      startedAt,
      timeoutMs,
      signal,
      { timeout: () => poolTimeoutError(timeoutMs), aborted: () => poolAbortedError(signal) },
      (w, error) => this.settle(w, { error }),
    );
    this.waiters.add(waiter);
    if (atCap) this.queue.push(waiter);
    else this.spawn(waiter);
    return waiter.promise;
  }

  /** Same as `lease.release()`. */
  release(lease: Lease): Promise<void> {
    return lease.release();
  }

  /** Count a sandbox created outside the pool (same spec) against `max` until `unregister`. */
  register(sandbox: Sandbox): void {
    if (this.closed) throw poolClosedError();
    if (!this.leases.has(sandbox)) this.registered.add(sandbox);
  }

  /** Stop counting a registered sandbox (the caller destroys it); unknown ones are ignored. */
  unregister(sandbox: Sandbox): void {
    if (this.registered.delete(sandbox)) this.pump();
  }

  /** Count a task waiting outside the pool in `queued`; call the returned function when it stops waiting. */
  trackQueued(): () => void {
    this.externalQueued++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.externalQueued--;
    };
  }

  /** A snapshot of the pool's counters and recent latencies. */
  stats(): PoolStats {
    const leased = this.leases.size;
    return {
      active: this.active(),
      idle: this.idle.length,
      queued: this.queue.length + this.externalQueued,
      leased,
      hits: this.counters.hits,
      misses: this.counters.misses,
      spawned: this.counters.spawned,
      destroyed: this.counters.destroyed,
      spawnMs: this.spawnSamples.percentiles(50, 95, 99),
      leaseWaitMs: this.waitSamples.percentiles(50, 95),
      creating: this.creating,
      spawnErrors: this.counters.spawnErrors,
      destroyErrors: this.counters.destroyErrors,
    };
  }

  /**
   * Reject waiters (E_POOL_CLOSED), destroy idle, leased and registered sandboxes and
   * those still being created; resolves when nothing is left. Idempotent.
   */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    clearInterval(this.idleTimer);
    this.idleTimer = undefined;
    for (const w of [...this.waiters]) this.settle(w, { error: poolClosedError() });
    for (const sb of this.idle.splice(0)) void this.destroy(sb);
    for (const lease of [...this.leases.values()]) void lease.release();
    for (const sb of [...this.registered]) {
      this.registered.delete(sb);
      void this.destroy(sb);
    }
    // Creations still running land in placeNew, which destroys them and adds to inflight.
    while (this.inflight.size > 0) await Promise.all(this.inflight);
  }

  private active(): number {
    return this.leases.size + this.registered.size + this.creating + this.destroying;
  }

  private total(): number {
    return this.active() + this.idle.length;
  }

  /** The oldest idle sandbox still alive; ones that died while idle (a crashed VM, a restarted guest agent) are cleaned up. */
  private takeIdle(): Sandbox | undefined {
    for (let sb = this.idle.shift(); sb; sb = this.idle.shift()) {
      if (!diedWhileIdle(sb)) return sb;
      void this.destroy(sb);
    }
    return undefined;
  }

  /** Destroy idle sandboxes that died while waiting (see takeIdle) and refill the warm set. */
  private dropBrokenIdle(): void {
    if (this.closed) return;
    const dead = this.idle.filter(diedWhileIdle);
    if (dead.length === 0) return;
    for (const sb of dead) {
      this.idle.splice(this.idle.indexOf(sb), 1);
      void this.destroy(sb);
    }
    this.pump();
  }

  /** Serve queued callers with what is free, then top the warm set up to `min`. */
  private pump(): void {
    if (this.closed) return;
    while (this.queue.length > 0) {
      const sb = this.takeIdle();
      if (sb) this.offer(sb);
      else if (this.total() < this.max) this.spawn(this.queue.shift());
      else break;
    }
    if (!this.started || this.backoffTimer) return;
    while (this.queue.length === 0 && this.idle.length + this.warmCreating < this.min && this.total() < this.max) {
      this.spawn(undefined);
    }
  }

  /** Create one sandbox, for `waiter` (a miss) or for the warm set (no waiter). */
  private spawn(waiter: Waiter | undefined): void {
    const warm = waiter === undefined;
    this.creating++;
    if (warm) this.warmCreating++;
    const t0 = performance.now();
    // The executor form turns a synchronous throw from create() into a rejection.
    const created = new Promise<Sandbox>((resolve) => resolve(this.backend.create(this.spec)));
    const done = () => {
      this.creating--;
      if (warm) this.warmCreating--;
    };
    const op = created.then(
      (sb) => {
        done();
        const ms = performance.now() - t0;
        this.counters.spawned++;
        this.spawnSamples.add(ms);
        this.backoffLevel = 0;
        this.emit({ type: "spawned", sandboxId: sb.id, ms, warm });
        this.placeNew(sb, waiter);
      },
      (error: unknown) => {
        done();
        this.counters.spawnErrors++;
        const retryInMs = this.closed ? undefined : this.scheduleBackoff();
        this.emit({ type: "spawnError", error, warm, retryInMs });
        // The waiter gets the backend's own error: it says what went wrong better than we could.
        if (waiter) this.settle(waiter, { error });
        this.pump();
      },
    );
    this.track(op);
  }

  /** Route a freshly created sandbox: to its waiter, else to the queue's head, else idle. */
  private placeNew(sb: Sandbox, waiter: Waiter | undefined): void {
    if (this.closed) {
      void this.destroy(sb);
      return;
    }
    if (!(waiter && this.serve(waiter, sb, false))) this.offer(sb);
    this.pump();
  }

  /** Give an unused sandbox to the oldest queued caller, or keep it idle. */
  private offer(sb: Sandbox): void {
    for (let w = this.queue[0]; w; w = this.queue[0]) {
      if (this.serve(w, sb, true)) return;
      this.queue.shift(); // settled waiters leave the queue in settle(); this is only a guard
    }
    this.idle.push(sb);
  }

  /** Resolve a waiter with `sb`; false when the waiter already gave up. */
  private serve(w: Waiter, sb: Sandbox, hit: boolean): boolean {
    if (w.settled) return false;
    this.settle(w, { lease: this.grant(sb, w.startedAt, hit) });
    return true;
  }

  private grant(sb: Sandbox, startedAt: number, hit: boolean): Lease {
    const leasedAt = performance.now();
    const waitedMs = leasedAt - startedAt;
    let released: Promise<void> | undefined;
    const lease: Lease = {
      sandbox: sb,
      hit,
      waitedMs,
      release: () => (released ??= this.retire(lease, leasedAt)),
    };
    this.leases.set(sb, lease);
    if (hit) this.counters.hits++;
    else this.counters.misses++;
    this.waitSamples.add(waitedMs);
    this.emit({ type: "lease", sandboxId: sb.id, hit, waitedMs });
    return lease;
  }

  private retire(lease: Lease, leasedAt: number): Promise<void> {
    this.leases.delete(lease.sandbox);
    this.emit({ type: "release", sandboxId: lease.sandbox.id, heldMs: performance.now() - leasedAt });
    return this.destroy(lease.sandbox);
  }

  /** Destroy `sb`; its slot stays counted (as active) until the backend finished tearing it down. */
  private destroy(sb: Sandbox): Promise<void> {
    this.destroying++;
    const op = new Promise<void>((resolve) => resolve(sb.destroy())).then(
      () => {
        this.destroying--;
        this.counters.destroyed++;
        this.emit({ type: "destroyed", sandboxId: sb.id });
        this.pump();
      },
      (error: unknown) => {
        // Freeing the slot anyway keeps one broken teardown from wedging the pool; the event says what leaked.
        this.destroying--;
        this.counters.destroyErrors++;
        this.emit({ type: "destroyError", sandboxId: sb.id, error });
        this.pump();
      },
    );
    this.track(op);
    return op;
  }

  /** Pause warm refills after a failed create so a broken backend is not hammered; returns the pause in ms. */
  private scheduleBackoff(): number {
    if (this.backoffTimer) return this.backoffDelayMs;
    const delay = Math.min(this.backoffInitialMs * 2 ** this.backoffLevel, this.backoffMaxMs);
    this.backoffLevel = Math.min(this.backoffLevel + 1, 30);
    this.backoffDelayMs = delay;
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      this.pump();
    }, delay);
    // A refill retry alone must not keep the process alive.
    this.backoffTimer.unref();
    return delay;
  }

  /** Settle a waiter once and take it out of every list; a creation running for it lands elsewhere. */
  private settle(w: Waiter, result: { lease: Lease } | { error: unknown }): void {
    if (w.settled) return;
    w.settled = true;
    w.cleanup();
    this.waiters.delete(w);
    const i = this.queue.indexOf(w);
    if (i >= 0) this.queue.splice(i, 1);
    if ("lease" in result) w.resolve(result.lease);
    else w.reject(result.error);
  }

  private track(op: Promise<void>): void {
    this.inflight.add(op);
    const forget = () => void this.inflight.delete(op);
    void op.then(forget, forget);
  }

  private emit(event: PoolEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A broken log or metrics sink must not break leasing.
      }
    }
  }
}
