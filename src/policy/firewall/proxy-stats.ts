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

/** Bytes of ended tunnels by destination: sent = sandbox to destination, received = the other way. */
export type ProxyBytes = Record<string, { sent: number; received: number }>;

/** Distinct destinations kept per sandbox and kind before the rest are lumped together. */
export const MAX_DESTINATIONS = 1_000;
/** The key the destinations beyond MAX_DESTINATIONS are counted under. */
export const OTHER_DESTINATIONS = "(other)";

/** Counters keyed by sandbox id. */
export class ProxyStats {
  private readonly bySandbox = new Map<string, { allowed: Map<string, number>; denied: Map<string, number>; bytes: Map<string, { sent: number; received: number }> }>();

  /** Count one connection or request to `destination`. */
  record(sandboxId: string, destination: string, kind: "allowed" | "denied"): void {
    const m = this.of(sandboxId)[kind];
    const key = keyFor(m, destination);
    m.set(key, (m.get(key) ?? 0) + 1);
  }

  /** Add the bytes of one ended tunnel to `destination`. */
  recordBytes(sandboxId: string, destination: string, sent: number, received: number): void {
    const m = this.of(sandboxId).bytes;
    const key = keyFor(m, destination);
    const b = m.get(key) ?? { sent: 0, received: 0 };
    m.set(key, { sent: b.sent + sent, received: b.received + received });
  }

  /** One sandbox's tunnel bytes by destination, or the sum over every sandbox. */
  bytes(sandboxId?: string): ProxyBytes {
    const out: ProxyBytes = {};
    for (const s of this.sources(sandboxId)) {
      for (const [k, v] of s.bytes) {
        const b = out[k] ?? { sent: 0, received: 0 };
        out[k] = { sent: b.sent + v.sent, received: b.received + v.received };
      }
    }
    return out;
  }

  /** One sandbox's counts, or the sum over every sandbox when `sandboxId` is undefined. */
  get(sandboxId?: string): ProxyCounts {
    const out: ProxyCounts = { allowed: {}, denied: {} };
    for (const s of this.sources(sandboxId)) {
      for (const kind of ["allowed", "denied"] as const) {
        for (const [k, v] of s[kind]) out[kind][k] = (out[kind][k] ?? 0) + v;
      }
    }
    return out;
  }

  private of(sandboxId: string) {
    let s = this.bySandbox.get(sandboxId);
    if (!s) {
      s = { allowed: new Map(), denied: new Map(), bytes: new Map() };
      this.bySandbox.set(sandboxId, s);
    }
    return s;
  }

  private sources(sandboxId: string | undefined) {
    return sandboxId === undefined ? [...this.bySandbox.values()] : [this.bySandbox.get(sandboxId)].filter((s) => s !== undefined);
  }

  /** Drop a sandbox's counters (after it is destroyed and its stats were read). */
  forget(sandboxId: string): void {
    this.bySandbox.delete(sandboxId);
  }
}

function keyFor(m: Map<string, unknown>, destination: string): string {
  return m.has(destination) || m.size < MAX_DESTINATIONS ? destination : OTHER_DESTINATIONS;
}
