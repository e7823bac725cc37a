/**
 * Red calls waiting for a person on the API or the web page. The queue holds
 * each card until someone approves (naming the card's hash, so an approval given
 * while looking at an old card cannot run a new call) or denies it, or the
 * approver gives up. Listeners hear "added" and "decided" so the daemon can
 * stream them.
 */
import { randomUUID } from "node:crypto";
import { ApprovalError } from "./errors.js";
import type { Decision, DiffCard } from "./types.js";

/** One card waiting for a decision. */
export interface PendingEntry {
  id: string;
  card: DiffCard;
  createdAt: string;
  expiresAt: string;
  /** Who made the call (the hub's audit session: a task id), so a client can pick out its own cards. */
  session: string | null;
}

/** What listeners hear. */
export type QueueEvent = { type: "added"; entry: PendingEntry } | { type: "decided"; entry: PendingEntry; decision: Decision };

interface Slot {
  entry: PendingEntry;
  waiters: ((d: Decision) => void)[];
}

/** The pending queue shared by the API approver and the daemon. */
export class ApprovalQueue {
  readonly #slots = new Map<string, Slot>();
  readonly #listeners = new Set<(e: QueueEvent) => void>();
  readonly #now: () => Date;

  constructor(opts: { now?: () => Date } = {}) {
    this.#now = opts.now ?? (() => new Date());
  }

  /** Put a card in the queue; `timeoutMs` only sets expiresAt (the approver enforces it). */
  add(card: DiffCard, opts: { timeoutMs?: number; session?: string | undefined } = {}): PendingEntry {
    const now = this.#now();
    const entry: PendingEntry = {
      id: randomUUID(),
      card,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + (opts.timeoutMs ?? 120_000)).toISOString(),
      session: opts.session ?? null,
    };
    this.#slots.set(entry.id, { entry, waiters: [] });
    this.#emit({ type: "added", entry });
    return entry;
  }

  /** Cards waiting now, oldest first. */
  list(): PendingEntry[] {
    return [...this.#slots.values()].map((s) => s.entry);
  }

  /** One waiting card, or undefined. */
  get(id: string): PendingEntry | undefined {
    return this.#slots.get(id)?.entry;
  }

  /** Approve; throws E_APPROVAL_NOT_FOUND or E_APPROVAL_HASH_MISMATCH (the entry then stays pending). */
  approve(id: string, opts: { hash: string; by: string; reason?: string | undefined }): Decision {
    const slot = this.#slot(id);
    if (opts.hash !== slot.entry.card.hash) {
      throw new ApprovalError(
        "E_APPROVAL_HASH_MISMATCH",
        `Approval ${id} names card ${short(opts.hash)} but the pending call is ${short(slot.entry.card.hash)}: reload the card and approve what it shows now.`,
        { details: { id, expected: slot.entry.card.hash, got: opts.hash } },
      );
    }
    return this.#decide(slot, { approved: true, by: opts.by, reason: opts.reason ?? `approved by ${opts.by}`, hash: slot.entry.card.hash });
  }

  /** Deny; needs no hash, since refusing can never run the wrong call. Throws E_APPROVAL_NOT_FOUND. */
  deny(id: string, opts: { by: string; reason?: string | undefined }): Decision {
    const slot = this.#slot(id);
    return this.#decide(slot, { approved: false, by: opts.by, reason: opts.reason ?? `denied by ${opts.by}`, hash: slot.entry.card.hash });
  }

  /** Take an entry off with a given decision (an approver giving up); false when it was no longer pending. */
  withdraw(id: string, decision: Decision): boolean {
    const slot = this.#slots.get(id);
    if (!slot) return false;
    this.#decide(slot, { ...decision, hash: slot.entry.card.hash });
    return true;
  }

  /** Resolves with the decision on `id`; throws E_APPROVAL_NOT_FOUND if it is not pending. */
  wait(id: string): Promise<Decision> {
    const slot = this.#slot(id);
    return new Promise((resolve) => slot.waiters.push(resolve));
  }

  /** Listen to "added" and "decided"; returns the function that stops listening. */
  subscribe(listener: (e: QueueEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #slot(id: string): Slot {
    const slot = this.#slots.get(id);
    if (!slot) {
      throw new ApprovalError("E_APPROVAL_NOT_FOUND", `No pending approval ${id}: it was already decided, it expired, or the id is wrong. List pending approvals to see what is waiting.`, {
        details: { id },
      });
    }
    return slot;
  }

  #decide(slot: Slot, decision: Decision): Decision {
    this.#slots.delete(slot.entry.id);
    for (const w of slot.waiters) w(decision);
    this.#emit({ type: "decided", entry: slot.entry, decision });
    return decision;
  }

  #emit(event: QueueEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch {
        // A broken listener (a dropped stream) must not stop a decision.
      }
    }
  }
}

function short(hash: string): string {
  return hash.slice(0, 12);
}
