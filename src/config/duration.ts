import { UsageError } from "../errors.js";

const UNITS: Record<string, number> = { ms: 1, s: 1000, "": 1000, m: 60_000, h: 3_600_000 };

/** Parse "500ms", "30s", "2m", "1h" or a bare number of seconds into milliseconds. */
export function parseDuration(input: string, what = "duration"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|)\s*$/.exec(input);
  if (!m || Number(m[1]) <= 0) {
    throw new UsageError(`Invalid ${what} ${JSON.stringify(input)}: use a positive number of seconds or a value like 500ms, 30s, 2m.`);
  }
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}
