/**
 * User rules from the config: the last word on a call's colour. They are matched
 * in order and the first match wins, so a specific rule goes before a broad one:
 *
 *   rules: [
 *     { match: "fs__write_file", args: { path: "/workspace/scratch/*" }, verdict: "green" },
 *     { match: "github__get_*", verdict: "green" },
 *     { match: "shell__*", verdict: "red", risk: "critical" },
 *   ]
 */
import * as z from "zod/mini";
import { isPathKey, resolveArgPath } from "./arg-signs.js";
import { canonicalJson } from "./call-hash.js";
import { globMatch } from "./glob.js";
import type { Classification, RiskLevel, ToolCall, Verdict } from "./types.js";

/** One user rule: a glob on "server__tool", optional globs on arguments, and the verdict to give. */
export interface UserRule {
  /** Glob on "server__tool" (`*` any run, `?` one character). */
  match: string;
  /**
   * Argument name → glob on its value. All must match. Strings are matched as they are, anything else as
   * canonical JSON, except path arguments: those are matched as normalised absolute paths, because a raw
   * "/workspace/tmp/../../etc/passwd" would otherwise satisfy the glob "/workspace/tmp/*".
   */
  args?: Record<string, string> | undefined;
  verdict: Verdict;
  risk?: RiskLevel | undefined;
  reason?: string | undefined;
}

/** The config schema of one user rule. */
export const userRuleSchema = z.strictObject({
  match: z.string().check(z.minLength(1, "a rule needs a 'match' glob on server__tool, e.g. \"fs__read_*\"")),
  args: z.optional(z.record(z.string(), z.string())),
  verdict: z.enum(["green", "red"]),
  risk: z.optional(z.enum(["low", "medium", "high", "critical"])),
  reason: z.optional(z.string()),
});

/** "fs__write_file": the name user rules and policy globs match on. */
export function qualifiedName(server: string, tool: string): string {
  return `${server}__${tool}`;
}

/** True when `rule` applies to `call`. */
export function ruleMatches(rule: UserRule, call: ToolCall, workspaceRoots: readonly string[]): boolean {
  if (!globMatch(rule.match, qualifiedName(call.server, call.tool))) return false;
  for (const [name, pattern] of Object.entries(rule.args ?? {})) {
    if (!Object.hasOwn(call.args, name)) return false;
    const value = call.args[name];
    if (value === undefined) return false;
    let text: string;
    try {
      text = typeof value === "string" ? (isPathKey(name) ? (resolveArgPath(value, workspaceRoots) ?? value) : value) : canonicalJson(value);
    } catch {
      return false;
    }
    if (!globMatch(pattern, text)) return false;
  }
  return true;
}

/** The classification of the first matching rule, or undefined when none matches. */
export function applyUserRules(rules: readonly UserRule[], call: ToolCall, workspaceRoots: readonly string[]): Classification | undefined {
  for (const [index, rule] of rules.entries()) {
    if (!ruleMatches(rule, call, workspaceRoots)) continue;
    const risk = rule.risk ?? (rule.verdict === "green" ? "low" : "medium");
    const reason = rule.reason ?? `user rule ${index} ('${rule.match}') makes it ${rule.verdict}`;
    return { verdict: rule.verdict, risk, reason, rule: `user-rule:${index}` };
  }
  return undefined;
}
