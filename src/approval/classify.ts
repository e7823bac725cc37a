/**
 * The classifier: green (runs at once) or red (waits for a person), with a risk
 * and a reason. Precedence, first that speaks wins:
 *
 *   1. user rules from the config (`user-rule:<i>`), both ways;
 *   2. hard red signs in the arguments (`args:path`, `args:money`, `args:recipient`, `args:method`);
 *   3. MCP annotations, but only where they make a call safer to judge:
 *      `destructiveHint: true` → red high; `readOnlyHint: false` → red;
 *      `readOnlyHint: true` → green, unless the name holds a red verb;
 *   4. verbs in the tool's name (`verb:<word>`): any red verb beats every green one;
 *   5. nothing known → red (`default:unknown`).
 *
 * Annotations come from the MCP server, which may be careless or hostile. A hint
 * that makes a call redder costs at worst one extra question, so it is believed;
 * a hint that makes a call greener is believed only when the name agrees or says
 * nothing. A server that calls `delete_file` read-only is overruled by its name.
 */
import { findArgSigns } from "./arg-signs.js";
import type { Classification, ToolCall } from "./types.js";
import { applyUserRules, type UserRule } from "./user-rules.js";
import { maxRisk, verbVerdict } from "./verbs.js";
import { splitWords } from "./words.js";

/** What the classifier needs besides the call. */
export interface ClassifyOptions {
  rules: readonly UserRule[];
  /** Absolute directories the tools may touch freely; default ["/workspace"]. */
  workspaceRoots?: readonly string[] | undefined;
}

/** Classify one tool call green or red, with risk, reason and the deciding rule. */
export function classify(call: ToolCall, opts: ClassifyOptions): Classification {
  const roots = opts.workspaceRoots && opts.workspaceRoots.length > 0 ? opts.workspaceRoots : ["/workspace"];

  const byUser = applyUserRules(opts.rules, call, roots);
  if (byUser) return byUser;

  const sign = findArgSigns(call.args, roots)[0];
  const words = splitWords(call.tool);
  const verb = verbVerdict(words);
  if (sign) {
    const risk = verb?.verdict === "red" ? maxRisk(sign.risk, verb.risk) : sign.risk;
    return { verdict: "red", risk, reason: sign.reason, rule: `args:${sign.kind}` };
  }

  const hints = call.annotations;
  if (hints?.destructiveHint === true) {
    return {
      verdict: "red",
      risk: maxRisk("high", verb?.verdict === "red" ? verb.risk : "high"),
      reason: "the server marks this tool destructive",
      rule: "annotation:destructiveHint",
    };
  }
  if (hints?.readOnlyHint === false) {
    return {
      verdict: "red",
      risk: verb?.verdict === "red" ? maxRisk("medium", verb.risk) : "medium",
      reason: "the server says this tool changes things (readOnlyHint: false)",
      rule: "annotation:readOnlyHint",
    };
  }
  if (hints?.readOnlyHint === true) {
    if (verb?.verdict === "red") {
      return {
        verdict: "red",
        risk: verb.risk,
        reason: `tool name verb '${verb.verb}' ${verb.effect}; the server's readOnlyHint does not outweigh the name`,
        rule: `verb:${verb.verb}`,
      };
    }
    return { verdict: "green", risk: "low", reason: "the server marks this tool read-only and its name agrees", rule: "annotation:readOnlyHint" };
  }

  if (verb) {
    return { verdict: verb.verdict, risk: verb.risk, reason: `tool name verb '${verb.verb}' ${verb.effect}`, rule: `verb:${verb.verb}` };
  }
  return {
    verdict: "red",
    risk: "medium",
    reason: `no known verb in the tool name '${call.tool}', so it may change things`,
    rule: "default:unknown",
  };
}
