/** The tamper-evident audit log: the store, its config section and its types. */
export { AuditStore, type AuditStoreOptions } from "./store.js";
export { AuditError, type AuditErrorCode } from "./errors.js";
export { auditPath, auditSchema, type AuditConfig } from "./config.js";
export { DEFAULT_REDACT, REDACTED } from "./redact.js";
export { canonicalJson } from "./canonical.js";
export { AUDIT_DECISIONS } from "./types.js";
export type { AuditDecision, AuditEntryInput, AuditFilter, AuditRow, VerifyProblem, VerifyProblemKind, VerifyResult } from "./types.js";
