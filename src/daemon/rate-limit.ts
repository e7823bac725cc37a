/**
 * Token buckets per client and kind of request. A client is "local" for the
 * Unix socket (file mode already says who may talk) and the token or remote
 * address on TCP. Buckets idle long enough to be full again are forgotten, so
 * many one-off clients cannot grow the map without bound.
 */
import type { DaemonConfig, RateLimitKind } from "./config.js";

export interface Bucket {
  perSecond: number;
  burst: number;
}

/** The answer for one request: allowed, or how many seconds until it would be. */
export type RateDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

interface State {
  tokens: number;
  at: number;
}

/** Per-(client, kind) token buckets with an injectable clock (ms). */
export class RateLimiter {
  readonly #limits: Record<RateLimitKind, Bucket>;
  readonly #now: () => number;
  readonly #states = new Map<string, State>();
  #lastSweep = 0;

  constructor(limits: DaemonConfig["rateLimits"], opts: { now?: () => number } = {}) {
    this.#limits = limits;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** Take one token for `client` of `kind`; when none is left, say when to retry. */
  take(client: string, kind: RateLimitKind): RateDecision {
    const { perSecond, burst } = this.#limits[kind];
    const now = this.#now();
    this.#sweep(now);
    const key = `${kind}\u0000${client}`;
    const prev = this.#states.get(key);
    const tokens = prev ? Math.min(burst, prev.tokens + ((now - prev.at) / 1000) * perSecond) : burst;
    if (tokens >= 1) {
      this.#states.set(key, { tokens: tokens - 1, at: now });
      return { ok: true };
    }
    this.#states.set(key, { tokens, at: now });
    // Whole seconds for Retry-After, at least 1: "0" would invite an immediate retry that fails again.
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / perSecond)) };
  }

  /** Buckets currently remembered (for tests and metrics). */
  get size(): number {
    return this.#states.size;
  }

  #sweep(now: number): void {
    if (now - this.#lastSweep < 60_000) return;
    this.#lastSweep = now;
    for (const [key, s] of this.#states) {
      const kind = key.slice(0, key.indexOf("\u0000")) as RateLimitKind;
      const { perSecond, burst } = this.#limits[kind];
      if (s.tokens + ((now - s.at) / 1000) * perSecond >= burst) this.#states.delete(key);
    }
  }
}
