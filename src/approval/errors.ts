import { LuminaError } from "../errors.js";

/** Stable codes of Approval Cliff errors. */
export type ApprovalErrorCode =
  | "E_APPROVAL_HASH_MISMATCH" // a decision (or the call about to run) names a different card than the one shown
  | "E_APPROVAL_NO_APPROVER" // the configured approver cannot work here (no terminal, no daemon queue)
  | "E_APPROVAL_NOT_FOUND" // no pending approval has that id (unknown, already decided or expired)
  | "E_APPROVAL_UNHASHABLE"; // tool arguments that JSON cannot carry faithfully (NaN, bigint, cycles, ...)

/** An error from the Approval Cliff: classification, cards, the pending queue or a decision's binding. */
export class ApprovalError extends LuminaError {
  declare readonly code: ApprovalErrorCode;

  constructor(code: ApprovalErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(code, message, options);
  }
}
