/**
 * The Approval Cliff as the hub uses it: classify a call, and for a red one
 * build its Diff Card, ask an approver, and check the answer is bound to this
 * exact call. The rules live in approval/; this file only strings them together.
 */
import { classify } from "../approval/classify.js";
import { buildDiffCard } from "../approval/diff-card.js";
import { checkDecision } from "../approval/binding.js";
import type { ContentReader } from "../approval/reader.js";
import type { Approver, Classification, Decision, DiffCard, ToolCall } from "../approval/types.js";
import type { UserRule } from "../approval/user-rules.js";

export interface GateOptions {
  rules: UserRule[];
  workspaceRoots: string[];
  /** How long a person has to answer; then the call is denied. */
  timeoutMs: number;
  /** The approver used when the caller brings none (terminal, policy, queue). */
  approver: Approver;
}

/** What happened at the cliff. */
export type GateOutcome =
  | { run: true; classification: Classification; decision: Decision | undefined; card: DiffCard | undefined }
  | { run: false; classification: Classification; decision: Decision; card: DiffCard };

/** A reader for when nothing can be read (remote servers without a read tool). */
const NO_READER: ContentReader = {
  readText: () => Promise.reject(new Error("this server runs outside LuminaGuard's sandboxes, so its files cannot be read")),
  stat: () => Promise.reject(new Error("this server runs outside LuminaGuard's sandboxes, so its files cannot be read")),
};

export class Gate {
  constructor(private readonly opts: GateOptions) {}

  classify(call: ToolCall): Classification {
    return classify(call, { rules: this.opts.rules, workspaceRoots: this.opts.workspaceRoots });
  }

  /** Classify, and for red calls wait for a decision bound to the call's hash. Never throws for a denial. */
  async pass(call: ToolCall, ctx: { reader: ContentReader | undefined; approver?: Approver | undefined; signal?: AbortSignal | undefined; session?: string | undefined }): Promise<GateOutcome> {
    const classification = this.classify(call);
    if (classification.verdict === "green") return { run: true, classification, decision: undefined, card: undefined };
    const card = await buildDiffCard(call, classification, ctx.reader ?? NO_READER);
    const approver = ctx.approver ?? this.opts.approver;
    const decision = await approver.decide(card, { signal: ctx.signal, timeoutMs: this.opts.timeoutMs, session: ctx.session });
    // An answer for another call (a stale or forged approval) must never release this one.
    checkDecision(card, decision, call);
    return decision.approved ? { run: true, classification, decision, card } : { run: false, classification, decision, card };
  }
}
