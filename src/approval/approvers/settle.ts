/**
 * The one place approvers get their guarantees: a decision always comes, within
 * the timeout, as a denial on timeout, abort or error, and it always names the
 * card's hash. Each approver supplies only "how to ask"; `settle` races it
 * against the clock and the caller's signal and tells it to clean up.
 */
import type { Decision, DiffCard } from "../types.js";

/** The approver-independent options of `decide`. */
export interface DecideOptions {
  signal?: AbortSignal | undefined;
  timeoutMs: number;
  /** Who made the call (a task id), when known. */
  session?: string | undefined;
}

/** How an approver asks; `signal` aborts when the answer is no longer wanted (it must then stop and clean up). */
export type Ask = (signal: AbortSignal) => Promise<Omit<Decision, "hash">>;

/** What settle reports when it gave up waiting; `onGiveUp` gets it first (e.g. to take a card off a queue). */
export interface SettleHooks {
  onGiveUp?: ((decision: Decision) => void) | undefined;
}

/** Whole seconds for messages ("timed out after 120 s"). */
export const seconds = (ms: number): string => `${Math.round((ms / 1000) * 10) / 10} s`;

/** A denial for `card`. */
export function deny(card: DiffCard, by: string, reason: string): Decision {
  return { approved: false, by, reason, hash: card.hash };
}

/** Run `ask` with the deadline and the caller's signal; resolves to a Decision, never rejects, never hangs past the timeout. */
export function settle(card: DiffCard, opts: DecideOptions, ask: Ask, hooks: SettleHooks = {}): Promise<Decision> {
  const inner = new AbortController();
  return new Promise<Decision>((resolve) => {
    let done = false;
    const clock: { timer?: NodeJS.Timeout } = {};
    const finish = (decision: Decision, gaveUp: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(clock.timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (gaveUp) {
        try {
          hooks.onGiveUp?.(decision);
        } catch {
          // Cleanup trouble must not turn a denial into a hang or a throw.
        }
      }
      inner.abort();
      resolve(decision);
    };
    const onAbort = () => finish(deny(card, "aborted", `denied: the call was cancelled before anyone decided (${abortReason(opts.signal)})`), true);

    if (opts.signal?.aborted) {
      onAbort();
      return;
    }
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const ms = Math.max(0, opts.timeoutMs);
    clock.timer = setTimeout(() => finish(deny(card, "timeout", `denied: nobody decided within ${seconds(ms)} (timed out)`), true), ms);

    let asked: Promise<Omit<Decision, "hash">>;
    try {
      asked = ask(inner.signal);
    } catch (err) {
      asked = Promise.reject(err);
    }
    asked.then(
      (d) => finish({ approved: d.approved === true, by: d.by, reason: d.reason, hash: card.hash }, false),
      (err: unknown) => finish(deny(card, "error", `denied: asking for approval failed: ${err instanceof Error ? err.message : String(err)}`), true),
    );
  });
}

function abortReason(signal: AbortSignal | undefined): string {
  const r: unknown = signal?.reason;
  if (r instanceof Error) return r.message;
  return r === undefined ? "aborted" : String(r);
}
