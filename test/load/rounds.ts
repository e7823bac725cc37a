/**
 * What the pool load tests share (the pool in the test's own process, and a
 * daemon process over its API): the load (rounds of 500 tasks launched at once
 * through max 8 / queue 64), how a round is judged, the settled pool between
 * rounds, and how much memory may grow from the first round to the last.
 */
import { expect } from "vitest";
import type { PoolStats } from "../../src/sandbox/pool.js";
import { eventually } from "../helpers/procs.js";

export const TASKS = 500;
export const MAX = 8;
export const MAX_QUEUE = 64;
export const MIN = 2;
export const ROUNDS = 3;

/** The pool section both tests run with. */
export const POOL = { min: MIN, max: MAX, maxQueue: MAX_QUEUE } as const;

/** How one task ended: served and `true` exited 0, refused with E_POOL_FULL, or anything else (described). */
export type Outcome = "done" | "full" | (string & {});

export interface Round {
  done: number;
  full: number;
  ms: number;
  /** Most sandboxes the pool answered for (active + idle) at any poll during the round. */
  peak: number;
}

/** Memory after a round (heap after a full GC). */
export interface MemorySample {
  heapUsed: number;
  rss: number;
}

type Read<T> = () => T | Promise<T>;

/**
 * Launch TASKS tasks at once while polling the pool every `pollMs`: each must
 * complete or be refused with E_POOL_FULL, and the cap must hold throughout.
 */
export async function runRound(task: () => Promise<Outcome>, stats: Read<PoolStats>, pollMs: number): Promise<Round> {
  let peak = 0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      const s = await stats();
      peak = Math.max(peak, s.active + s.idle);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  })();
  const t0 = performance.now();
  let outcomes: Outcome[];
  try {
    outcomes = await Promise.all(Array.from({ length: TASKS }, () => task().catch((err: unknown) => `${(err as { code?: string }).code ?? "error"}: ${(err as Error).message}`)));
  } finally {
    polling = false;
    await poll;
  }
  const ms = performance.now() - t0;
  expect(outcomes.filter((o) => o !== "done" && o !== "full")).toEqual([]);
  const done = outcomes.filter((o) => o === "done").length;
  const full = outcomes.filter((o) => o === "full").length;
  expect(done + full).toBe(TASKS);
  // Launched at once: the queue fills, and of the max slots up to `min` go to the warm refill
  // the first hits start (it later serves the queue), so at least max - min + maxQueue are served.
  expect(done).toBeGreaterThanOrEqual(MAX - MIN + MAX_QUEUE);
  expect(full).toBeGreaterThan(0);
  expect(peak).toBeLessThanOrEqual(MAX);
  return { done, full, ms, peak };
}

/** Wait until the pool settled (refilled to min, nothing in flight) and check that its books balance. */
export async function expectSettled(stats: Read<PoolStats>): Promise<PoolStats> {
  let s = await stats();
  const settled = await eventually(async () => ((s = await stats()), s.active === 0 && s.creating === 0 && s.idle === MIN), 30_000, 20);
  expect(settled, JSON.stringify(s)).toBe(true);
  expect([s.active, s.queued, s.leased]).toEqual([0, 0, 0]);
  expect(s.spawned - s.destroyed).toBe(s.idle);
  expect(s.spawnErrors + s.destroyErrors).toBe(0);
  return s;
}

/** Most the last round's memory may exceed the first's by. */
export interface Growth {
  heapBytes: number;
  rssBytes: number;
}

/** The first round warms every lazy cache; from then on, memory must stay within `growth`. */
export function expectNoGrowth(mem: MemorySample[], growth: Growth): void {
  const first = mem[0]!;
  const last = mem[mem.length - 1]!;
  expect(last.heapUsed - first.heapUsed, `heap grew from ${mb(first.heapUsed)} to ${mb(last.heapUsed)} MB`).toBeLessThan(growth.heapBytes);
  expect(last.rss - first.rss, `rss grew from ${mb(first.rss)} to ${mb(last.rss)} MB`).toBeLessThan(growth.rssBytes);
}

/** One line per round for the test's output. */
export function roundLine(n: number, r: Round, s: PoolStats, mem: MemorySample): string {
  return `round ${n}: ${r.done} done, ${r.full} E_POOL_FULL in ${Math.round(r.ms)} ms (peak ${r.peak}); spawned ${s.spawned}, destroyed ${s.destroyed}; heap ${mb(mem.heapUsed)} MB, rss ${mb(mem.rss)} MB`;
}

export function mb(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}
