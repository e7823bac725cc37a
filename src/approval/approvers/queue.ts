/**
 * The API/web approver: puts the card on the pending queue and waits for someone
 * to decide through the daemon. On timeout or abort the card is taken off the
 * queue with the denial, so a late approval gets E_APPROVAL_NOT_FOUND.
 */
import type { ApprovalQueue } from "../queue.js";
import type { Approver, Decision, DiffCard } from "../types.js";
import { settle, type DecideOptions } from "./settle.js";

/** Waits on the pending queue for a decision made elsewhere. */
export class QueueApprover implements Approver {
  readonly name = "api";
  readonly #queue: ApprovalQueue;

  constructor(opts: { queue: ApprovalQueue }) {
    this.#queue = opts.queue;
  }

  /** Queue the card and wait for approve/deny, the timeout, or the abort. */
  decide(card: DiffCard, opts: DecideOptions): Promise<Decision> {
    let id: string | undefined;
    return settle(
      card,
      opts,
      (signal) => {
        if (signal.aborted) return Promise.reject(new Error("aborted before queueing"));
        const entry = this.#queue.add(card, { timeoutMs: opts.timeoutMs, session: opts.session });
        id = entry.id;
        return this.#queue.wait(entry.id);
      },
      { onGiveUp: (d) => void (id !== undefined && this.#queue.withdraw(id, d)) },
    );
  }
}
