/**
 * The last check before a red call runs: the decision must be for this card,
 * and (when the call is given) the card must be for this exact call. Together
 * they make an approval good for one set of arguments only, so nothing can be
 * swapped in between showing the card and running the call.
 */
import { callHash } from "./call-hash.js";
import { ApprovalError } from "./errors.js";
import type { Decision, DiffCard, ToolCall } from "./types.js";

/** Throws E_APPROVAL_HASH_MISMATCH unless `decision` (and `call`, if given) match `card`'s hash. */
export function checkDecision(card: DiffCard, decision: Decision, call?: ToolCall): void {
  if (decision.hash !== card.hash) {
    throw new ApprovalError(
      "E_APPROVAL_HASH_MISMATCH",
      `The decision by ${decision.by} is for call ${decision.hash.slice(0, 12)}, not for the card shown (${card.hash.slice(0, 12)}): the call was not run. Ask again for this call.`,
      { details: { expected: card.hash, got: decision.hash } },
    );
  }
  if (call !== undefined) {
    const actual = callHash(call.server, call.tool, call.args);
    if (actual !== card.hash) {
      throw new ApprovalError(
        "E_APPROVAL_HASH_MISMATCH",
        `The call to ${call.server}__${call.tool} changed after its card was shown (${actual.slice(0, 12)} vs ${card.hash.slice(0, 12)}): it was not run. Ask again for the new call.`,
        { details: { expected: card.hash, got: actual } },
      );
    }
  }
}
