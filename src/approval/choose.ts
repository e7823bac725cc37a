/**
 * Which approver answers red calls, from `approval.approver` and what the
 * process has: a terminal to ask on, or nobody (then the policy approver,
 * which denies red calls unless approval.policy.allow names them).
 */
import type { ApprovalConfig } from "./config.js";
import type { Approver } from "./types.js";
import { PolicyApprover } from "./approvers/policy.js";
import { TerminalApprover } from "./approvers/terminal.js";
import { QueueApprover } from "./approvers/queue.js";
import type { ApprovalQueue } from "./queue.js";
import { ApprovalError } from "./errors.js";

export interface ApproverContext {
  /** A terminal to ask on (the CLI's TTY, or /dev/tty when stdin is an MCP channel), if there is one. */
  terminal?: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream; color: boolean } | undefined;
  /** The pending-approval queue that the API and web page answer (the daemon has one). */
  queue?: ApprovalQueue | undefined;
}

/**
 * The hub's default approver. "elicitation" and "auto" also end up here for
 * clients that cannot answer elicitation requests; the gateway asks the client
 * itself when it can.
 */
export function chooseApprover(cfg: ApprovalConfig, ctx: ApproverContext): Approver {
  const policy = (): Approver => new PolicyApprover({ allow: cfg.policy.allow });
  switch (cfg.approver) {
    case "policy":
      return policy();
    case "terminal":
      if (!ctx.terminal) throw new ApprovalError("E_APPROVAL_NO_APPROVER", "approval.approver is \"terminal\" but there is no terminal to ask on. Run LuminaGuard in a terminal, or set approval.approver to \"policy\" (with approval.policy.allow) for unattended runs.");
      return new TerminalApprover(ctx.terminal);
    case "api":
      if (!ctx.queue) throw new ApprovalError("E_APPROVAL_NO_APPROVER", "approval.approver is \"api\", which needs the daemon (`luminaguard daemon`) to hold the approval queue. Start the daemon, or use \"terminal\" or \"policy\".");
      return new QueueApprover({ queue: ctx.queue });
    case "elicitation":
    case "auto":
      if (ctx.terminal) return new TerminalApprover(ctx.terminal);
      if (ctx.queue) return new QueueApprover({ queue: ctx.queue });
      return policy();
  }
}
