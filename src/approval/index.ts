/** The Approval Cliff's public surface: classify, build a card, ask an approver, check the binding. */
export { classify, type ClassifyOptions } from "./classify.js";
export { callHash, canonicalJson } from "./call-hash.js";
export { buildDiffCard, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DIFF_LINES, type DiffCardOptions } from "./diff-card.js";
export type { ContentReader, PathStat } from "./reader.js";
export { cardJson, renderCardText, type RenderOptions } from "./render.js";
export { checkDecision } from "./binding.js";
export { ApprovalQueue, type PendingEntry, type QueueEvent } from "./queue.js";
export { PolicyApprover, type PolicyApproverOptions } from "./approvers/policy.js";
export { TerminalApprover, type TerminalApproverOptions } from "./approvers/terminal.js";
export { ElicitationApprover, ELICITATION_SCHEMA, type ElicitAnswer, type ElicitFn } from "./approvers/elicitation.js";
export { QueueApprover } from "./approvers/queue.js";
export { approvalSchema, type ApprovalConfig } from "./config.js";
export { userRuleSchema, qualifiedName, type UserRule } from "./user-rules.js";
export { ApprovalError, type ApprovalErrorCode } from "./errors.js";
export type * from "./types.js";
