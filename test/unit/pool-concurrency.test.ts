import { describe, expect, it } from "vitest";
import { hasCode } from "../../src/errors.js";
import { SandboxError } from "../../src/sandbox/errors.js";
import { SandboxPool, type Lease } from "../../src/sandbox/pool.js";
import { FakeBackend, sleep, testSpec } from "../helpers/fake-backend.js";

/** A small deterministic PRNG so a failing run can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("SandboxPool under load", () => {
  it("200 concurrent leases against max=8: each completes or gets E_POOL_FULL, never more than 8 alive", async () => {
    const random = rng(42);
    const backend = new FakeBackend({ createMs: () => 1 + Math.floor(random() * 5), destroyMs: 1 });
    const max = 8;
    const maxQueue = 100;
    let peakCounted = 0;
    let peakQueued = 0;
    const pool = new SandboxPool({ backend, spec: testSpec(), min: 2, max, maxQueue });
    const watch = () => {
      const s = pool.stats();
      peakCounted = Math.max(peakCounted, s.active + s.idle);
      peakQueued = Math.max(peakQueued, s.queued);
    };
    await pool.start();

    let completed = 0;
    let full = 0;
    const hold = async (lease: Lease) => {
      watch();
      await sleep(random() * 10);
      await lease.release();
      watch();
    };
    await Promise.all(
      Array.from({ length: 200 }, async () => {
        try {
          const lease = await pool.lease();
          completed++;
          await hold(lease);
        } catch (err) {
          if (!hasCode(err, "E_POOL_FULL")) throw err;
          full++;
        }
      }),
    );
    watch();

    expect(completed + full).toBe(200);
    // All 200 arrive in one tick: the 8 slots go to callers (2 warm hits, new creates) and to
    // refills of the warm set started by the hits, 100 callers queue, the rest are turned away.
    expect(completed).toBeGreaterThanOrEqual(max - 2 + maxQueue);
    expect(completed).toBeLessThanOrEqual(max + maxQueue);
    expect(full).toBeGreaterThanOrEqual(200 - max - maxQueue);
    expect(backend.peakLive).toBeLessThanOrEqual(max);
    expect(backend.peakReserved).toBeLessThanOrEqual(max);
    expect(peakCounted).toBeLessThanOrEqual(max);
    expect(peakQueued).toBeLessThanOrEqual(maxQueue);

    const s = pool.stats();
    expect(s.hits + s.misses).toBe(completed);
    expect(s).toMatchObject({ queued: 0, leased: 0 }); // active may still hold refills of the warm set
    await pool.close();
    expect(pool.stats()).toMatchObject({ active: 0, queued: 0, leased: 0, idle: 0, creating: 0 });
    expect(backend.live.size).toBe(0);
    expect(backend.creating).toBe(0);
    expect(pool.stats().spawned).toBe(pool.stats().destroyed);
  });

  it("stays consistent with aborts, timeouts and create failures mixed in", async () => {
    const random = rng(7);
    const backend = new FakeBackend({
      createMs: () => Math.floor(random() * 6),
      destroyMs: 1,
      failCreate: () => (random() < 0.15 ? new SandboxError("E_SANDBOX_START", "injected") : undefined),
    });
    const max = 5;
    const pool = new SandboxPool({
      backend,
      spec: testSpec(),
      min: 2,
      max,
      maxQueue: 60,
      backoff: { initialMs: 1, maxMs: 8 },
    });
    await pool.start();

    const outcomes = new Map<string, number>();
    const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    await Promise.all(
      Array.from({ length: 150 }, async (_, i) => {
        await sleep(random() * 30);
        const ac = new AbortController();
        if (i % 7 === 0) setTimeout(() => ac.abort(), random() * 10);
        try {
          const lease = await pool.lease({ signal: ac.signal, timeoutMs: i % 5 === 0 ? random() * 15 : 5_000 });
          count("ok");
          await sleep(random() * 5);
          await lease.release();
          if (i % 3 === 0) await lease.release();
        } catch (err) {
          const code = err instanceof SandboxError ? err.code : "other";
          expect(["E_POOL_FULL", "E_POOL_ABORTED", "E_POOL_TIMEOUT", "E_SANDBOX_START"]).toContain(code);
          count(code);
        }
      }),
    );

    const total = [...outcomes.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(150);
    // How many succeed depends on timing (short timeouts under a loaded CI); some always do.
    expect(outcomes.get("ok") ?? 0).toBeGreaterThan(0);
    expect(backend.peakReserved).toBeLessThanOrEqual(max);
    expect(pool.stats()).toMatchObject({ queued: 0, leased: 0 });
    await pool.close();
    expect(pool.stats()).toMatchObject({ active: 0, queued: 0, leased: 0, idle: 0, creating: 0 });
    expect(backend.live.size).toBe(0);
  });
});
