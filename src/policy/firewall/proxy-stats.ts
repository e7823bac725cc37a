/**
 * Allowed/denied connection counters of the egress proxy, per sandbox and
 * destination ("host:port"), for the pool/runtime stats and the metrics export.
 *
 * A sandbox chooses the destinations it tries, so one that probes random names
 * could grow the maps without bound: past MAX_DESTINATIONS distinct keys per
 * sandbox and kind, further destinations are counted under OTHER_DESTINATIONS.
 */

/** Counts by destination ("host:port"). */
export interface ProxyCounts {
  allowed: Record<string, number>;
  denied: Record<string, number>;
}

/** Distinct destinations kept per sandbox and kind before the rest are lumped together. */
export const MAX_DESTINATIONS = 1_000;
/** The key the destinations beyond MAX_DESTINATIONS are counted under. */
export const OTHER_DESTINATIONS = "(other)";

/** Counters keyed by sandbox id. */
export class ProxyStats {
  private readonly bySandbox = new Map<string, { allowed: Map<string, number>; denied: Map<string, number> }>();

  /** Count one connection or request to `destination`. */
  record(sandboxId: string, destination: string, kind: "allowed" | "denied"): void {
    let s = this.bySandbox.get(sandboxId);
    if (!s) {
      s = { allowed: new Map(), denied: new Map() };
      this.bySandbox.set(sandboxId, s);
    }
    const m = s[kind];
    const key = m.has(destination) || m.size < MAX_DESTINATIONS ? destination : OTHER_DESTINATIONS;
    m.set(key, (m.get(key) ?? 0) + 1);
  }

  /** One sandbox's counts, or the sum over every sandbox when `sandboxId` is undefined. */
  get(sandboxId?: string): ProxyCounts {
    const out: ProxyCounts = { allowed: {}, denied: {} };
    const sources = sandboxId === undefined ? [...this.bySandbox.values()] : [this.bySandbox.get(sandboxId)].filter((s) => s !== undefined);
    for (const s of sources) {
      for (const kind of ["allowed", "denied"] as const) {
        for (const [k, v] of s[kind]) out[kind][k] = (out[kind][k] ?? 0) + v;
      }
    }
    return out;
  }

  /** Drop a sandbox's counters (after it is destroyed and its stats were read). */
  forget(sandboxId: string): void {
    this.bySandbox.delete(sandboxId);
  }
}
