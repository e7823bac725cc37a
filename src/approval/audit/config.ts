/**
 * The `audit` section of the config file. Kept free of node:sqlite so the config
 * schema (loaded by every `luminaguard exec`) does not pull in the store.
 */
import { join } from "node:path";
import * as z from "zod/mini";
import { stateDir } from "../../config/paths.js";
import { DEFAULT_REDACT } from "./redact.js";

/** The default audit log: audit.db in the state folder (see stateDir). */
export function auditPath(): string {
  return join(stateDir(), "audit.db");
}

/** Embed at `audit` in the config schema (with `z.prefault(auditSchema, {})`). */
export const auditSchema = z.strictObject({
  /** The SQLite file; unset means auditPath(). */
  path: z.optional(z.string().check(z.minLength(1, "audit.path must not be empty"))),
  /**
   * More key-name globs (case-insensitive, `*` and `?`) whose values are stored as "[REDACTED]".
   * They add to DEFAULT_REDACT rather than replace it: adding `*ssn*` must not quietly stop redacting passwords.
   */
  redact: z._default(z.array(z.string().check(z.minLength(1, "redact patterns must not be empty"))), []),
});

/** Every pattern redacted for this config: the defaults plus the config's own. */
export function redactPatterns(cfg: { redact: readonly string[] }): string[] {
  return [...DEFAULT_REDACT, ...cfg.redact];
}

/** The validated `audit` section. */
export type AuditConfig = z.infer<typeof auditSchema>;
