/** Timing helpers shared by the benchmarks. */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: benchmarks run compiled from .cache/bench-build/bench/. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "bench", "setup.sh"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find the repository root (bench/setup.sh)");
    dir = up;
  }
  return dir;
}
export interface Summary {
  name: string;
  runs: number;
  p50: number;
  p95: number;
  mean: number;
}

/** Nearest-rank percentile of a sample. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

export function summarize(name: string, samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  return { name, runs: samples.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), mean };
}

/** Time `fn` `runs` times (after `warmup` untimed runs), printing progress on stderr. */
export async function measure(name: string, runs: number, fn: () => Promise<void>, warmup = 5): Promise<Summary> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
    if ((i + 1) % 50 === 0 || i + 1 === runs) process.stderr.write(`\r  ${name}: ${i + 1}/${runs}   `);
  }
  process.stderr.write("\n");
  return summarize(name, samples);
}

/** A fixed-width table for the terminal and for Markdown. */
export function table(rows: Summary[]): string {
  const head = "| case | runs | p50 ms | p95 ms | mean ms |";
  const line = "|---|---:|---:|---:|---:|";
  const body = rows.map((r) => `| ${r.name} | ${r.runs} | ${r.p50.toFixed(3)} | ${r.p95.toFixed(3)} | ${r.mean.toFixed(3)} |`);
  return [head, line, ...body].join("\n");
}
