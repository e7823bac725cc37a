import { LuminaError } from "../../errors.js";

/** Stable codes of audit-log errors. */
export type AuditErrorCode =
  | "E_AUDIT_OPEN" // the file or its folder cannot be opened or created
  | "E_AUDIT_CORRUPT" // not a LuminaGuard audit log, or a schema this version cannot read
  | "E_AUDIT_WRITE" // an append failed (locked too long, disk full, bad entry)
  | "E_AUDIT_NOT_FOUND"; // no row with the asked id

/** An error from the tamper-evident audit log. */
export class AuditError extends LuminaError {
  declare readonly code: AuditErrorCode;

  constructor(code: AuditErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(code, message, options);
  }
}
