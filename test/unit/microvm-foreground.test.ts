/**
 * The micro-VM backend's ForegroundGate: preparation steps wait while a caller's
 * command is young and running, never longer than one window after it started,
 * and never longer than maxWaitMs in all.
 */
import { describe, expect, it } from "vitest";
import { ForegroundGate } from "../../src/sandbox/microvm/foreground.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How long quiet() took, in ms. */
async function timed(gate: ForegroundGate): Promise<number> {
  const t0 = performance.now();
  await gate.quiet();
  return performance.now() - t0;
}

describe("ForegroundGate", () => {
  it("lets a step through at once when no command runs, and after a command that already ended", async () => {
    const gate = new ForegroundGate({ windowMs: 1000, maxWaitMs: 5000 });
    expect(await timed(gate)).toBeLessThan(100);
    gate.begin()();
    expect(gate.busy).toBe(0);
    expect(await timed(gate)).toBeLessThan(100);
  });

  it("holds a step while a young command runs and releases it when the command ends", async () => {
    const gate = new ForegroundGate({ windowMs: 5000, maxWaitMs: 10_000 });
    const end = gate.begin();
    expect(gate.busy).toBe(1);
    let passed = false;
    const step = gate.quiet().then(() => (passed = true));
    await sleep(150);
    expect(passed).toBe(false);
    end();
    const t0 = performance.now();
    await step;
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it("sees a command begun right after the step was asked for (a lease's refill asks synchronously, before the caller's exec)", async () => {
    const gate = new ForegroundGate({ windowMs: 300, maxWaitMs: 5000 });
    const step = timed(gate);
    const end = gate.begin(); // same tick, after quiet() was called
    expect(await step).toBeGreaterThanOrEqual(250);
    end();
  });

  it("waits for a long-running command only until its window is over", async () => {
    const gate = new ForegroundGate({ windowMs: 200, maxWaitMs: 5000 });
    const end = gate.begin();
    const waited = await timed(gate);
    expect(waited).toBeGreaterThanOrEqual(150);
    expect(waited).toBeLessThan(2000);
    expect(gate.busy).toBe(0);
    end();
  });

  it("never holds a step past maxWaitMs, however many commands keep starting; several steps wait at once", async () => {
    const gate = new ForegroundGate({ windowMs: 200, maxWaitMs: 400 });
    let stop = false;
    const ends: (() => void)[] = [];
    const stream = (async () => {
      while (!stop) {
        ends.push(gate.begin());
        await sleep(50);
      }
    })();
    const [a, b] = await Promise.all([timed(gate), timed(gate)]);
    stop = true;
    await stream;
    for (const e of ends) e();
    for (const w of [a, b]) {
      expect(w).toBeGreaterThanOrEqual(350);
      expect(w).toBeLessThan(2000);
    }
  });
});
