import { getEventListeners } from "node:events";
import { afterEach, describe, expect, it, vi } from "vitest";
import { hasCode, UsageError } from "../../src/errors.js";
import { SandboxError } from "../../src/sandbox/errors.js";
import { SandboxPool, type PoolEvent, type PoolOptions } from "../../src/sandbox/pool.js";
import { FakeBackend, type FakeBackendOptions, sleep, testSpec, waitFor } from "../helpers/fake-backend.js";

const opened: { pool: SandboxPool; backend: FakeBackend }[] = [];

function setup(backendOpts: FakeBackendOptions = {}, poolOpts: Partial<PoolOptions> = {}) {
  const backend = new FakeBackend({ createMs: 5, ...backendOpts });
  const events: PoolEvent[] = [];
  const pool = new SandboxPool({
    backend,
    spec: testSpec(),
    min: 0,
    max: 4,
    maxQueue: 10,
    onEvent: (e) => events.push(e),
    ...poolOpts,
  });
  opened.push({ pool, backend });
  return { backend, pool, events };
}

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

afterEach(async () => {
  for (const { pool, backend } of opened.splice(0)) {
    await pool.close();
    expect(backend.live.size).toBe(0);
  }
});

describe("SandboxPool: warm path", () => {
  it("fills to min on start, serves a warm one as a hit, and refills after the lease", async () => {
    const { pool, backend } = setup({}, { min: 2 });
    await pool.start();
    expect(pool.stats()).toMatchObject({ idle: 2, active: 0, spawned: 2, leased: 0 });

    const lease = await pool.lease();
    expect(lease.hit).toBe(true);
    expect(pool.stats()).toMatchObject({ hits: 1, misses: 0, leased: 1, idle: 1, creating: 1, active: 2 });

    await waitFor(() => pool.stats().idle === 2, "refill to min");
    expect(backend.live.size).toBe(3);
    await lease.release();
    expect(pool.stats()).toMatchObject({ idle: 2, active: 0, leased: 0, destroyed: 1 });
  });

  it("creates a sandbox on a miss when none is idle", async () => {
    const { pool } = setup({ createMs: 15 });
    const lease = await pool.lease();
    expect(lease.hit).toBe(false);
    expect(lease.waitedMs).toBeGreaterThanOrEqual(14);
    expect(pool.stats()).toMatchObject({ hits: 0, misses: 1, leased: 1, active: 1, idle: 0 });
    await lease.release();
  });

  it("destroys on release (single use) and ignores a second release", async () => {
    const { pool, backend } = setup();
    const lease = await pool.lease();
    const first = lease.release();
    expect(pool.release(lease)).toBe(first);
    expect(lease.release()).toBe(first);
    await first;
    expect(lease.sandbox.destroyed).toBe(true);
    expect(backend.live.size).toBe(0);
    expect(pool.stats()).toMatchObject({ idle: 0, active: 0, leased: 0, destroyed: 1 });
    // The destroyed sandbox never comes back: the next lease gets a new one.
    const next = await pool.lease();
    expect(next.sandbox).not.toBe(lease.sandbox);
    await next.release();
  });

  it("skips an idle sandbox that died while waiting", async () => {
    const { pool, backend } = setup({}, { min: 1 });
    await pool.start();
    const [idleOne] = backend.live;
    // Simulate the guest dying while idle: it is destroyed behind the pool's back.
    await idleOne?.destroy();
    const lease = await pool.lease();
    expect(lease.sandbox).not.toBe(idleOne);
    expect(lease.sandbox.destroyed).toBe(false);
    expect(lease.hit).toBe(false);
    await lease.release();
  });

  it("replaces an idle sandbox that broke on its own without waiting for a lease", async () => {
    const { pool, backend, events } = setup({}, { min: 1, idleCheckMs: 20 });
    await pool.start();
    const [idleOne] = backend.live;
    idleOne!.broken = new SandboxError("E_VM_CRASHED", "The micro-VM stopped unexpectedly.");
    // No lease: the idle check finds it, destroys it and refills the warm set.
    await waitFor(() => idleOne!.destroyed && pool.stats().idle === 1, "the broken idle sandbox replaced");
    expect(events.filter((e) => e.type === "spawned")).toHaveLength(2);
    const lease = await pool.lease();
    expect(lease.sandbox).not.toBe(idleOne);
    expect(lease.hit).toBe(true);
    await lease.release();
  });

  it("leaves idle sandboxes to lease time when the idle check is off", async () => {
    const { pool, backend } = setup({}, { min: 1, idleCheckMs: 0 });
    await pool.start();
    const [idleOne] = backend.live;
    idleOne!.broken = new SandboxError("E_VM_CRASHED", "The micro-VM stopped unexpectedly.");
    await sleep(100);
    expect(idleOne!.destroyed).toBe(false);
    const lease = await pool.lease();
    expect(lease.sandbox).not.toBe(idleOne);
    expect(idleOne!.destroyed).toBe(true);
    await lease.release();
  });
});

describe("SandboxPool: cap and queue", () => {
  it("queues callers FIFO at max and serves them as slots free", async () => {
    const { pool } = setup({}, { max: 1 });
    const l1 = await pool.lease();
    const order: number[] = [];
    const w2 = pool.lease().then((l) => (order.push(2), l));
    const w3 = pool.lease().then((l) => (order.push(3), l));
    expect(pool.stats()).toMatchObject({ queued: 2, active: 1, leased: 1 });

    await l1.release();
    const l2 = await w2;
    expect(pool.stats().queued).toBe(1);
    await l2.release();
    const l3 = await w3;
    expect(order).toEqual([2, 3]);
    expect(pool.stats()).toMatchObject({ queued: 0, leased: 1 });
    await l3.release();
  });

  it("rejects at once with E_POOL_FULL when the queue is full", async () => {
    const { pool } = setup({}, { max: 1, maxQueue: 1 });
    const l1 = await pool.lease();
    const w2 = pool.lease();
    const err = await rejection(pool.lease());
    expect(err).toBeInstanceOf(SandboxError);
    expect(hasCode(err, "E_POOL_FULL")).toBe(true);
    expect((err as Error).message).toMatch(/pool\.max or pool\.maxQueue/);
    expect(pool.stats().queued).toBe(1);
    await l1.release();
    await (await w2).release();
  });

  it("counts registered sandboxes against max and queued tasks in stats", async () => {
    const { pool, backend } = setup({}, { max: 2 });
    const external = await backend.create(testSpec());
    pool.register(external);
    pool.register(external);
    const l1 = await pool.lease();
    expect(pool.stats()).toMatchObject({ active: 2, leased: 1 });
    const w2 = pool.lease();
    expect(pool.stats().queued).toBe(1);

    pool.unregister(external);
    pool.unregister(external);
    const l2 = await w2;
    expect(pool.stats()).toMatchObject({ active: 2, leased: 2, queued: 0 });

    const done = pool.trackQueued();
    expect(pool.stats().queued).toBe(1);
    done();
    done();
    expect(pool.stats().queued).toBe(0);
    await Promise.all([l1.release(), l2.release(), external.destroy()]);
  });
});

describe("SandboxPool: giving up", () => {
  it("removes an aborted waiter from the queue and serves the next one", async () => {
    const { pool } = setup({}, { max: 1 });
    const l1 = await pool.lease();
    const ac = new AbortController();
    const w2 = rejection(pool.lease({ signal: ac.signal }));
    const w3 = pool.lease();
    expect(pool.stats().queued).toBe(2);

    ac.abort(new Error("user pressed stop"));
    const err = await w2;
    expect(hasCode(err, "E_POOL_ABORTED")).toBe(true);
    expect((err as Error).cause).toBeInstanceOf(Error);
    expect(pool.stats().queued).toBe(1);

    await l1.release();
    const l3 = await w3;
    expect(pool.stats()).toMatchObject({ queued: 0, leased: 1 });
    await l3.release();
  });

  it("leaves no abort listeners behind on a long-lived signal", async () => {
    const { pool } = setup({ createMs: 0 }, { max: 1 });
    const ac = new AbortController();
    for (let i = 0; i < 20; i++) await (await pool.lease({ signal: ac.signal })).release();
    const held = await pool.lease({ signal: ac.signal });
    const timedOut = rejection(pool.lease({ signal: ac.signal, timeoutMs: 5 }));
    expect(hasCode(await timedOut, "E_POOL_TIMEOUT")).toBe(true);
    await held.release();
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });

  it("rejects at once when the signal is already aborted", async () => {
    const { pool } = setup({}, { min: 1 });
    await pool.start();
    const err = await rejection(pool.lease({ signal: AbortSignal.abort() }));
    expect(hasCode(err, "E_POOL_ABORTED")).toBe(true);
    expect(pool.stats()).toMatchObject({ idle: 1, leased: 0, queued: 0 });
  });

  it("times out a queued waiter with E_POOL_TIMEOUT and serves the next one", async () => {
    const { pool } = setup({}, { max: 1, leaseTimeoutMs: 30 });
    const l1 = await pool.lease();
    const w2 = rejection(pool.lease());
    const w3 = pool.lease({ timeoutMs: 5_000 });
    const err = await w2;
    expect(hasCode(err, "E_POOL_TIMEOUT")).toBe(true);
    expect((err as Error).message).toMatch(/30 ms/);
    expect(pool.stats().queued).toBe(1);

    await l1.release();
    await (await w3).release();
  });

  it("keeps a sandbox created for a caller that gave up, for the next caller", async () => {
    const { pool } = setup({ createMs: 40 }, { max: 1 });
    const ac = new AbortController();
    const w1 = rejection(pool.lease({ signal: ac.signal }));
    await sleep(5);
    ac.abort();
    expect(hasCode(await w1, "E_POOL_ABORTED")).toBe(true);
    expect(pool.stats()).toMatchObject({ creating: 1, active: 1 });

    await waitFor(() => pool.stats().idle === 1, "left-over sandbox parked idle");
    const lease = await pool.lease();
    expect(lease.hit).toBe(true);
    await lease.release();
  });
});

describe("SandboxPool: create failures", () => {
  it("gives the waiter the backend's own error and keeps working", async () => {
    const boom = new SandboxError("E_SANDBOX_START", "bwrap exited 1; see details.");
    const { pool } = setup({ failCreate: (n) => (n === 1 ? boom : undefined) }, { max: 1 });
    expect(await rejection(pool.lease())).toBe(boom);
    expect(pool.stats()).toMatchObject({ spawnErrors: 1, active: 0, leased: 0 });
    const lease = await pool.lease();
    await lease.release();
  });

  it("backs off exponentially, capped, before refilling, then recovers", async () => {
    const boom = new SandboxError("E_SANDBOX_START", "fake failure");
    const { pool, events } = setup(
      { createMs: 1, failCreate: (n) => (n <= 4 ? boom : undefined) },
      { min: 1, backoff: { initialMs: 10, maxMs: 40 } },
    );
    await pool.start();
    await waitFor(() => pool.stats().idle === 1, "recovery after 4 failures");
    const retries = events.flatMap((e) => (e.type === "spawnError" ? [e.retryInMs] : []));
    expect(retries).toEqual([10, 20, 40, 40]);
    expect(pool.stats()).toMatchObject({ spawnErrors: 4, spawned: 1 });
  });

  it("does not spin against a backend that always fails", async () => {
    const { pool, backend } = setup(
      { createMs: 0, failCreate: () => new SandboxError("E_BACKEND_UNAVAILABLE", "no backend") },
      { min: 2, backoff: { initialMs: 20, maxMs: 50 } },
    );
    await pool.start();
    await sleep(200);
    // About 6 refill rounds of 2 in 200 ms; a busy loop would make thousands of calls.
    expect(backend.createCalls).toBeGreaterThanOrEqual(4);
    expect(backend.createCalls).toBeLessThan(20);
    expect(pool.stats().idle).toBe(0);
  });

  it("survives a synchronous throw from create and a throwing event listener", async () => {
    const backend = new FakeBackend();
    let calls = 0;
    const create = backend.create.bind(backend);
    backend.create = (spec) => {
      if (++calls === 1) throw new SandboxError("E_SANDBOX_START", "sync throw");
      return create(spec);
    };
    const pool = new SandboxPool({
      backend,
      spec: testSpec(),
      min: 0,
      max: 1,
      maxQueue: 1,
      logger: () => {
        throw new Error("log sink down");
      },
    });
    opened.push({ pool, backend });
    expect(hasCode(await rejection(pool.lease()), "E_SANDBOX_START")).toBe(true);
    await (await pool.lease()).release();
    expect(pool.stats()).toMatchObject({ spawnErrors: 1, spawned: 1, destroyed: 1 });
  });
});

describe("SandboxPool: stats", () => {
  it("reports percentiles of measured spawn and wait times", async () => {
    const { pool } = setup({ createMs: (n) => n * 10 }, { max: 1 });
    for (let i = 0; i < 10; i++) await (await pool.lease()).release();
    const s = pool.stats();
    // Spawn samples are about 10, 20, ... 100 ms; nearest rank p50 is the 5th (~50 ms).
    expect(s.spawnMs.p50).toBeGreaterThanOrEqual(49);
    expect(s.spawnMs.p50).toBeLessThan(s.spawnMs.p95); // the 5th sample, not the 10th
    expect(s.spawnMs.p95).toBeGreaterThanOrEqual(99);
    expect(s.spawnMs.p99).toBe(s.spawnMs.p95);
    expect(s.leaseWaitMs.p50).toBeGreaterThanOrEqual(s.spawnMs.p50);
    expect(s).toMatchObject({ misses: 10, spawned: 10, destroyed: 10 });
  });

  it("measures a 20 ms create as at least 20 ms", async () => {
    const { pool } = setup({ createMs: 20 });
    await (await pool.lease()).release();
    expect(pool.stats().spawnMs.p50).toBeGreaterThanOrEqual(19);
    expect(pool.stats().leaseWaitMs.p95).toBeGreaterThanOrEqual(19);
  });
});

describe("SandboxPool: close", () => {
  it("rejects waiters, destroys idle, leased and in-flight sandboxes, and stays closed", async () => {
    const { pool, backend } = setup({ createMs: 20 }, { min: 2, max: 4 });
    await pool.start();
    const l1 = await pool.lease();
    const l2 = await pool.lease();
    expect(pool.stats().creating).toBe(2);
    const w3 = rejection(pool.lease());
    expect(pool.stats().queued).toBe(1);

    await pool.close();
    expect(hasCode(await w3, "E_POOL_CLOSED")).toBe(true);
    expect(backend.live.size).toBe(0);
    expect(backend.creating).toBe(0);
    expect(l1.sandbox.destroyed && l2.sandbox.destroyed).toBe(true);
    expect(pool.stats()).toMatchObject({ active: 0, idle: 0, queued: 0, leased: 0, creating: 0 });

    expect(hasCode(await rejection(pool.lease()), "E_POOL_CLOSED")).toBe(true);
    expect(hasCode(await rejection(pool.start()), "E_POOL_CLOSED")).toBe(true);
    expect(() => pool.register(l1.sandbox)).toThrow(SandboxError);
    await l1.release();
    await pool.close();
    expect(pool.stats().destroyed).toBe(4);
  });

  it("destroys registered sandboxes too", async () => {
    const { pool, backend } = setup();
    pool.register(await backend.create(testSpec()));
    await pool.close();
    expect(backend.live.size).toBe(0);
  });

  it("leaves no timers behind, unref'd backoff timers included", async () => {
    // Fake timers count every pending timer; the real ones hide unref'd timers from inspection.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const { pool } = setup(
        { createMs: 1, failCreate: (n) => (n === 1 ? new SandboxError("E_SANDBOX_START", "x") : undefined) },
        { min: 1, max: 1, backoff: { initialMs: 60_000 } },
      );
      const started = pool.start();
      await vi.advanceTimersByTimeAsync(2);
      await started; // the failure left a 60 s backoff timer pending
      expect(pool.stats().spawnErrors).toBe(1);
      const w = rejection(pool.lease({ timeoutMs: 60_000 })); // and a waiter with a 60 s timeout
      expect(vi.getTimerCount()).toBe(3); // backoff, waiter timeout, fake create latency
      const closed = pool.close();
      await vi.advanceTimersByTimeAsync(5);
      await closed;
      expect(hasCode(await w, "E_POOL_CLOSED")).toBe(true);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("validates its options", () => {
    const backend = new FakeBackend();
    const base = { backend, spec: testSpec(), min: 0, max: 2, maxQueue: 0 };
    expect(() => new SandboxPool({ ...base, min: 3 })).toThrow(UsageError);
    expect(() => new SandboxPool({ ...base, max: 0 })).toThrow(UsageError);
    expect(() => new SandboxPool({ ...base, maxQueue: -1 })).toThrow(UsageError);
    expect(() => new SandboxPool({ ...base, leaseTimeoutMs: -5 })).toThrow(UsageError);
  });
});
