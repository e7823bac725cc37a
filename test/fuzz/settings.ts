/**
 * Shared fast-check settings for the fuzz tests: a fixed seed so every run tries
 * the same cases (CI failures reproduce locally), overridable to explore more.
 *   FUZZ_SEED=123 FUZZ_RUNS=5000 npx vitest run test/fuzz
 * fast-check prints the seed and the shrunk counterexample of a failure.
 */
import fc from "fast-check";

/** The seed of this run: FUZZ_SEED, else a fixed one. */
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261125);

/** Runs per property: `base` (a few hundred keeps the suite fast), scaled by FUZZ_RUNS/300 when set. */
export function runs(base = 300): number {
  const wanted = Number(process.env.FUZZ_RUNS ?? 300);
  return Math.max(1, Math.round((base * wanted) / 300));
}

fc.configureGlobal({ seed: FUZZ_SEED, numRuns: runs() });

export { fc };
