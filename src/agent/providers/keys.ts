/**
 * API keys with fallbacks (OPENAI_API_KEY, OPENAI_API_KEY_2, _3, …) and the
 * retry policy around one model request: a 429 moves to the next key that is
 * not limited; when every key is limited we wait for the soonest Retry-After,
 * within a bound; 5xx and connection failures are retried a few times with
 * backoff; anything else fails at once with a typed error. Keys never leave
 * this file in messages: only their index and variable name do.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { AgentError } from "../errors.js";
import type { ProviderNotice } from "../types.js";

/** What went wrong with one HTTP attempt, as far as retrying cares. */
export interface HttpFailure {
  /** HTTP status; undefined when no answer came (connection refused, reset). */
  status: number | undefined;
  retryAfterMs: number | undefined;
  /** The server's own error text. */
  message: string;
  /** True when the server could not be reached at all. */
  connection: boolean;
}

export interface RetryPolicy {
  /** When every key is rate-limited, wait at most this long in all. */
  maxWaitMs: number;
  /** Retries of a 5xx or connection failure (on the same key). */
  retries: number;
  /** First backoff delay; it doubles each retry. */
  baseDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxWaitMs: 60_000, retries: 2, baseDelayMs: 500 };

/** A 429 without Retry-After limits its key for this long. */
const DEFAULT_LIMIT_MS = 1_000;
const TRANSIENT = new Set([408, 409, 500, 502, 503, 504, 529]);

/** The values of NAME, NAME_2, NAME_3, … (stops at the first gap after NAME_2). */
export function keysFromEnv(env: NodeJS.ProcessEnv, name: string): string[] {
  const keys: string[] = [];
  const first = env[name]?.trim();
  if (first) keys.push(first);
  for (let n = 2; ; n++) {
    const v = env[`${name}_${n}`]?.trim();
    if (!v) break;
    keys.push(v);
  }
  return keys;
}

/** The variable a key index came from (1 → NAME, 2 → NAME_2). */
export function keyVariable(name: string, index: number): string {
  return index <= 1 ? name : `${name}_${index}`;
}

/** Milliseconds from Retry-After / retry-after-ms headers (seconds or an HTTP date), if any. */
export function retryAfterMs(get: (name: string) => string | null | undefined): number | undefined {
  const ms = Number(get("retry-after-ms"));
  if (get("retry-after-ms") && Number.isFinite(ms) && ms >= 0) return ms;
  const raw = get("retry-after");
  if (!raw) return undefined;
  const secs = Number(raw);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

export interface KeyRingOptions {
  /** "OpenAI", for messages. */
  label: string;
  /** The variable the first key came from ("OPENAI_API_KEY"); undefined for keyless providers. */
  variable: string | undefined;
  /** Where requests go, for messages. */
  where: string;
  retry: RetryPolicy;
}

/**
 * The keys of one provider and which of them are rate-limited. One ring per
 * provider instance, so a key found limited stays skipped for later requests.
 */
export class KeyRing {
  private current = 0;
  private readonly limitedUntil: number[];

  constructor(
    private readonly keys: (string | undefined)[],
    private readonly opts: KeyRingOptions,
  ) {
    if (keys.length === 0) this.keys = [undefined];
    this.limitedUntil = this.keys.map(() => 0);
  }

  /** Run one request, switching keys and retrying as the policy says; resolves with the 1-based key index that answered. */
  async run<T>(
    attempt: (key: string | undefined, signal: AbortSignal | undefined) => Promise<T>,
    describe: (err: unknown) => HttpFailure | undefined,
    signal: AbortSignal | undefined,
    onNotice?: (n: ProviderNotice) => void,
  ): Promise<{ value: T; keyIndex: number }> {
    let waited = 0;
    let transientTries = 0;
    for (;;) {
      const i = this.current;
      try {
        return { value: await attempt(this.keys[i], signal), keyIndex: i + 1 };
      } catch (err) {
        if (signal?.aborted) throw err;
        const f = describe(err);
        if (!f) throw err;
        if (f.status === 429) {
          const now = Date.now();
          this.limitedUntil[i] = now + (f.retryAfterMs ?? DEFAULT_LIMIT_MS);
          const free = this.nextFree(i, now);
          if (free !== undefined) {
            this.current = free;
            onNotice?.({ kind: "rate-limited", keyIndex: i + 1, waitMs: 0, message: `${this.name(i)} is rate-limited; trying ${this.name(free)}` });
            continue;
          }
          const soonest = this.soonest();
          const wait = Math.max(0, this.limitedUntil[soonest]! - now);
          if (waited + wait > this.opts.retry.maxWaitMs) throw this.rateLimited(f, wait);
          onNotice?.({ kind: "rate-limited", keyIndex: i + 1, waitMs: wait, message: `every key is rate-limited; waiting ${Math.ceil(wait / 1000)} s (Retry-After) for ${this.name(soonest)}` });
          await sleep(wait, undefined, { signal });
          waited += wait;
          this.current = soonest;
          continue;
        }
        if ((f.connection || (f.status !== undefined && TRANSIENT.has(f.status))) && transientTries < this.opts.retry.retries) {
          const delay = this.opts.retry.baseDelayMs * 2 ** transientTries;
          transientTries++;
          onNotice?.({ kind: "retry", keyIndex: i + 1, waitMs: delay, message: `${this.opts.label} ${f.status === undefined ? "could not be reached" : `answered ${f.status}`}; retry ${transientTries} of ${this.opts.retry.retries} in ${delay} ms` });
          await sleep(delay, undefined, { signal });
          continue;
        }
        throw this.failed(f, i, err);
      }
    }
  }

  private nextFree(from: number, now: number): number | undefined {
    for (let step = 1; step < this.keys.length; step++) {
      const j = (from + step) % this.keys.length;
      if (this.limitedUntil[j]! <= now) return j;
    }
    return undefined;
  }

  private soonest(): number {
    let best = 0;
    for (let j = 1; j < this.keys.length; j++) if (this.limitedUntil[j]! < this.limitedUntil[best]!) best = j;
    return best;
  }

  private name(i: number): string {
    return this.opts.variable ? keyVariable(this.opts.variable, i + 1) : "the server";
  }

  private rateLimited(f: HttpFailure, wait: number): AgentError {
    const vars = this.opts.variable ? ` Add another key as ${keyVariable(this.opts.variable, this.keys.length + 1)}, or` : "";
    return new AgentError(
      "E_AGENT_RATE_LIMITED",
      `${this.opts.label} rate-limited every key (${this.keys.length}) and asks to wait ${Math.ceil(wait / 1000)} s more, past agent.rateLimitMaxWaitSeconds (${Math.round(this.opts.retry.maxWaitMs / 1000)} s).${vars} try again later. (${f.message})`,
      { details: { status: 429, keys: this.keys.length } },
    );
  }

  private failed(f: HttpFailure, i: number, cause: unknown): AgentError {
    if (f.status === 401 || f.status === 403) {
      return new AgentError("E_AGENT_AUTH", `${this.opts.label} at ${this.opts.where} refused ${this.name(i)} (${f.status}): ${f.message}. Check the key.`, { cause, details: { status: f.status, keyIndex: i + 1 } });
    }
    if (f.status === undefined) {
      return new AgentError("E_AGENT_PROVIDER", `Cannot reach ${this.opts.label} at ${this.opts.where}: ${f.message}. Check that the server runs and the address (agent.baseUrl) is right.`, { cause });
    }
    return new AgentError("E_AGENT_PROVIDER", `${this.opts.label} at ${this.opts.where} answered ${f.status}: ${f.message}. ${f.status >= 500 ? "The server failed; try again later." : "Check agent.model and agent.baseUrl."}`, { cause, details: { status: f.status } });
  }
}
