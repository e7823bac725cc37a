/**
 * The non-interactive approver: red calls are denied unless the config's
 * allow-list names them. For CI, daemons without a person, and scripted runs.
 */
import { globMatch } from "../glob.js";
import type { Approver, Decision, DiffCard } from "../types.js";
import { qualifiedName } from "../user-rules.js";
import { deny, type DecideOptions } from "./settle.js";

/** PolicyApprover options: globs on "server__tool" that may run without a person. */
export interface PolicyApproverOptions {
  allow: readonly string[];
}

/** Approves a red call only when an allow glob matches "server__tool". */
export class PolicyApprover implements Approver {
  readonly name = "policy";
  readonly #allow: readonly string[];

  constructor(opts: PolicyApproverOptions) {
    this.#allow = [...opts.allow];
  }

  /** Decide at once from the allow-list; an already-aborted call is denied. */
  decide(card: DiffCard, opts: DecideOptions): Promise<Decision> {
    if (opts.signal?.aborted) return Promise.resolve(deny(card, "aborted", "denied: the call was cancelled before anyone decided"));
    const name = qualifiedName(card.server, card.tool);
    const glob = this.#allow.find((g) => globMatch(g, name));
    if (glob !== undefined) {
      return Promise.resolve({ approved: true, by: "policy", reason: `allowed by policy: ${name} matches '${glob}' in approval.policy.allow`, hash: card.hash });
    }
    return Promise.resolve(
      deny(card, "policy", `denied by policy: red calls need a person; add '${name}' to approval.policy.allow to allow it`),
    );
  }
}
