import { UsageError } from "../errors.js";

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024, kb: 1000, kib: 1024,
  m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3,
};

/**
 * Parse a size like "512M", "1.5GiB", "64kb" or "1048576" into bytes. Single letters
 * (K, M, G) are binary, as in docker and systemd; "MB" is decimal, "MiB" binary.
 */
export function parseSize(input: string | number, what = "size"): number {
  if (typeof input === "number") {
    if (Number.isFinite(input) && input >= 0) return Math.floor(input);
    throw new UsageError(`Invalid ${what} ${input}: use a non-negative number of bytes or a size like 512M.`);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new UsageError(`Invalid ${what} ${JSON.stringify(input)}: use a number with an optional unit, e.g. 512M, 2G, 1.5GiB, 100MB.`);
  }
  return Math.floor(Number(m[1]) * unit);
}

/** Bytes as a short human string: 536870912 → "512 MiB". */
export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}
