import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { percentile, SampleWindow } from "../../src/sandbox/percentiles.js";

describe("percentile (nearest rank)", () => {
  const sorted = [15, 20, 35, 40, 50];

  it("returns a real sample at rank ceil(p/100 * n)", () => {
    expect(percentile(sorted, 5)).toBe(15);
    expect(percentile(sorted, 30)).toBe(20);
    expect(percentile(sorted, 40)).toBe(20);
    expect(percentile(sorted, 50)).toBe(35);
    expect(percentile(sorted, 95)).toBe(50);
    expect(percentile(sorted, 100)).toBe(50);
  });

  it("returns the minimum for p=0 and 0 for no samples", () => {
    expect(percentile(sorted, 0)).toBe(15);
    expect(percentile([], 50)).toBe(0);
    expect(percentile([7], 99)).toBe(7);
  });

  it("matches the textbook values on 1..100", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 95)).toBe(95);
    expect(percentile(xs, 99)).toBe(99);
  });

  it("rejects p outside 0..100", () => {
    expect(() => percentile(sorted, 101)).toThrow(UsageError);
    expect(() => percentile(sorted, Number.NaN)).toThrow(UsageError);
  });
});

describe("SampleWindow", () => {
  it("keeps only the last `capacity` samples", () => {
    const w = new SampleWindow(4);
    for (const x of [100, 200, 1, 2, 3, 4]) w.add(x);
    expect(w.size).toBe(4);
    expect(w.percentiles(0, 100)).toEqual({ p0: 1, p100: 4 });
  });

  it("sorts samples added out of order", () => {
    const w = new SampleWindow();
    for (const x of [9, 1, 5, 3, 7]) w.add(x);
    expect(w.percentiles(50, 95, 99)).toEqual({ p50: 5, p95: 9, p99: 9 });
  });

  it("reports zeros when empty and refuses a useless capacity", () => {
    expect(new SampleWindow(8).percentiles(50, 95)).toEqual({ p50: 0, p95: 0 });
    expect(() => new SampleWindow(0)).toThrow(UsageError);
  });
});
