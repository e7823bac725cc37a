/**
 * Webhook delivery: each matching event is POSTed as signed JSON to every
 * subscribed URL, retried with exponential backoff (full jitter) up to
 * `attempts`, and written to the dead-letter list when every attempt failed or
 * the daemon stopped first. Deliveries run in the background: a slow receiver
 * never slows the runtime.
 */
import { randomUUID } from "node:crypto";
import type { DaemonConfig, WebhookConfig } from "../config.js";
import { DaemonError } from "../errors.js";
import { eventMatches, type RuntimeEvent } from "../events.js";
import type { DeadLetter, DeadLetters } from "./dead-letters.js";
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signBody } from "./sign.js";

export interface WebhookOptions {
  hooks: readonly WebhookConfig[];
  retry: DaemonConfig["webhookRetry"];
  deadLetters: DeadLetters;
  /** Reports each final failure (the daemon logs it). */
  onDeadLetter?: (letter: DeadLetter) => void;
}

/** Background webhook deliveries with retries and a dead-letter list. */
export class WebhookDispatcher {
  readonly #opts: WebhookOptions;
  readonly #inflight = new Set<Promise<void>>();
  readonly #stop = new AbortController();

  constructor(opts: WebhookOptions) {
    this.#opts = opts;
  }

  /** Queue deliveries of `event` to every hook that subscribes to it. */
  handle(event: RuntimeEvent): void {
    if (this.#stop.signal.aborted) return;
    for (const hook of this.#opts.hooks) {
      if (!hook.events.some((p) => eventMatches(p, event.type))) continue;
      const id = randomUUID();
      const body = JSON.stringify({ id, event: event.type, time: event.time, data: event.data });
      const op = this.#deliver(hook, { id, event: event.type, body });
      this.#inflight.add(op);
      void op.finally(() => this.#inflight.delete(op));
    }
  }

  /** Deliveries not finished yet. */
  get pending(): number {
    return this.#inflight.size;
  }

  /**
   * Stop: deliveries get until `graceMs` to finish; the rest stop retrying and
   * go to the dead-letter list (so nothing is lost silently).
   */
  async close(graceMs: number): Promise<void> {
    const all = Promise.all([...this.#inflight]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.#stop.abort();
    await Promise.all([...this.#inflight]);
  }

  async #deliver(hook: WebhookConfig, d: { id: string; event: string; body: string }): Promise<void> {
    const { attempts, baseMs, maxMs, timeoutMs } = this.#opts.retry;
    let lastError = "";
    let tried = 0;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        const delay = Math.random() * Math.min(maxMs, baseMs * 2 ** (attempt - 1));
        if (!(await sleep(delay, this.#stop.signal))) {
          lastError = `${lastError}; the daemon stopped before the next attempt`;
          break;
        }
      }
      tried++;
      try {
        await sendWebhook(hook, d, { timeoutMs, signal: this.#stop.signal });
        return;
      } catch (err) {
        lastError = (err as Error).message;
      }
    }
    const letter: DeadLetter = { id: d.id, url: hook.url, event: d.event, body: d.body, attempts: tried, lastError, failedAt: new Date().toISOString() };
    try {
      this.#opts.deadLetters.add(letter);
    } catch {
      // Nowhere left to put it; onDeadLetter still reports it.
    }
    this.#opts.onDeadLetter?.(letter);
  }
}

/** POST one signed delivery; throws E_DAEMON_WEBHOOK unless the receiver answers 2xx. */
export async function sendWebhook(
  hook: Pick<WebhookConfig, "url" | "secret">,
  d: { id: string; event: string; body: string },
  opts: { timeoutMs: number; signal?: AbortSignal | undefined },
): Promise<void> {
  const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]) : AbortSignal.timeout(opts.timeoutMs);
  let res: Response;
  try {
    res = await fetch(hook.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "luminaguard-webhook/0.1",
        [SIGNATURE_HEADER]: signBody(hook.secret, d.body),
        [TIMESTAMP_HEADER]: String(Math.floor(Date.now() / 1000)),
        [DELIVERY_HEADER]: d.id,
        [EVENT_HEADER]: d.event,
      },
      body: d.body,
      redirect: "manual",
      signal,
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw new DaemonError("E_DAEMON_WEBHOOK", `POST ${hook.url} failed: ${(err as Error).message}${cause ? ` (${cause})` : ""}`, { cause: err });
  }
  // Drain the body so the connection can be reused; its content does not matter.
  await res.arrayBuffer().catch(() => undefined);
  if (res.status < 200 || res.status > 299) throw new DaemonError("E_DAEMON_WEBHOOK", `POST ${hook.url} answered HTTP ${res.status}.`);
}

/** Re-send a dead letter (re-signed with the hook's current secret); on success it leaves the list. */
export async function replayDeadLetter(letter: DeadLetter, hooks: readonly WebhookConfig[], deadLetters: DeadLetters, timeoutMs = 10_000): Promise<void> {
  const hook = hooks.find((h) => h.url === letter.url);
  if (!hook) throw new DaemonError("E_DAEMON_WEBHOOK", `No webhook for ${letter.url} in daemon.webhooks any more, so there is no secret to sign with; add it back to replay this delivery.`);
  await sendWebhook(hook, letter, { timeoutMs });
  deadLetters.markReplayed(letter.id);
}

/** Wait `ms`; false when `signal` aborted first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(ok);
    };
    const onAbort = (): void => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
