/**
 * Percentiles over a bounded window of recent samples (spawn and lease-wait times).
 *
 * Nearest-rank on purpose: every reported value is one that was really measured,
 * and the window keeps memory constant however long the daemon runs.
 */
import { UsageError } from "../errors.js";

/** The nearest-rank `p`th percentile (0..100) of ascending `sorted`; 0 when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new UsageError(`Percentile must be between 0 and 100, got ${p}.`);
  const n = sorted.length;
  if (n === 0) return 0;
  // Rank 1 for p=0 so the minimum, not an index of -1, comes back.
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sorted[rank - 1] as number;
}

/** A ring buffer of the last `capacity` samples. */
export class SampleWindow {
  private readonly buf: number[] = [];
  private next = 0;

  constructor(readonly capacity = 1024) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new UsageError(`SampleWindow capacity must be a positive integer, got ${capacity}.`);
    }
  }

  /** Record one sample, dropping the oldest when full. */
  add(value: number): void {
    if (this.buf.length < this.capacity) this.buf.push(value);
    else this.buf[this.next] = value;
    this.next = (this.next + 1) % this.capacity;
  }

  /** How many samples the window holds now. */
  get size(): number {
    return this.buf.length;
  }

  /** The requested percentiles of the samples held, sorted once for all of them. */
  percentiles<P extends number>(...ps: P[]): Record<`p${P}`, number> {
    const sorted = [...this.buf].sort((a, b) => a - b);
    const out: Record<string, number> = {};
    for (const p of ps) out[`p${p}`] = percentile(sorted, p);
    return out as Record<`p${P}`, number>;
  }
}
