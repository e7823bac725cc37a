/**
 * The elicitation approver: asks the person behind the upstream MCP client,
 * through an MCP `elicitation/create` request the gateway sends for us. The
 * message is the uncoloured card in full (a dialog cannot offer "view more"),
 * and the form is one boolean `approve` and an optional `reason`.
 */
import { renderCardText } from "../render.js";
import type { Approver, Decision, DiffCard } from "../types.js";
import { settle, type DecideOptions } from "./settle.js";

/** What the client answered, as in MCP's ElicitResult. */
export interface ElicitAnswer {
  action: "accept" | "decline" | "cancel";
  content?: Record<string, unknown> | undefined;
}

/**
 * Sends one elicitation request upstream. The third argument is optional to use:
 * pass `signal` and `timeoutMs` on to the SDK's request options so an abandoned
 * question is withdrawn from the client too.
 */
export type ElicitFn = (message: string, requestedSchema: object, opts?: { signal: AbortSignal; timeoutMs: number }) => Promise<ElicitAnswer>;

/** The form the client shows. */
export const ELICITATION_SCHEMA = {
  type: "object",
  properties: {
    approve: { type: "boolean", title: "Approve this call?", description: "Yes runs the call exactly as shown; no denies it." },
    reason: { type: "string", title: "Reason (optional)", description: "Shown to the agent on a denial." },
  },
  required: ["approve"],
} as const;

/** Asks through MCP elicitation. */
export class ElicitationApprover implements Approver {
  readonly name = "elicitation";
  readonly #elicit: ElicitFn;

  constructor(opts: { elicit: ElicitFn }) {
    this.#elicit = opts.elicit;
  }

  /** Send the card upstream and map the answer; every failure is a denial. */
  decide(card: DiffCard, opts: DecideOptions): Promise<Decision> {
    const message = renderCardText(card, { color: false, full: true });
    return settle(card, opts, async (signal) => {
      let answer: ElicitAnswer;
      try {
        answer = await this.#elicit(message, ELICITATION_SCHEMA, { signal, timeoutMs: opts.timeoutMs });
      } catch (err) {
        return { approved: false, by: "elicitation", reason: `denied: the approval request to the MCP client failed: ${err instanceof Error ? err.message : String(err)}` };
      }
      return mapAnswer(answer);
    });
  }
}

function mapAnswer(answer: ElicitAnswer): Omit<Decision, "hash"> {
  const reasonText = typeof answer?.content?.reason === "string" && answer.content.reason.trim() !== "" ? answer.content.reason.trim() : undefined;
  if (answer?.action === "accept" && answer.content?.approve === true) {
    return { approved: true, by: "elicitation", reason: reasonText ? `approved by user: ${reasonText}` : "approved by user" };
  }
  if (answer?.action === "accept") {
    return { approved: false, by: "elicitation", reason: reasonText ? `denied by user: ${reasonText}` : "denied by user" };
  }
  if (answer?.action === "decline") return { approved: false, by: "elicitation", reason: "denied by user: the approval request was declined" };
  if (answer?.action === "cancel") return { approved: false, by: "elicitation", reason: "denied: the user dismissed the approval request without answering" };
  return { approved: false, by: "elicitation", reason: "denied: the MCP client gave an answer LuminaGuard does not understand" };
}
