/** The daemon's typed errors and how every LuminaError maps onto an HTTP status. */
import { LuminaError, UsageError } from "../errors.js";

/** An error of the daemon itself (E_DAEMON_*). */
export class DaemonError extends LuminaError {}

/** HTTP status for an error code: the caller's mistakes are 4xx, the runtime's are 5xx. */
export function httpStatusFor(err: unknown): number {
  if (err instanceof UsageError) return 400;
  if (!(err instanceof LuminaError)) return 500;
  const byCode: Record<string, number> = {
    E_CONFIG: 400,
    E_DAEMON_BAD_REQUEST: 400,
    E_DAEMON_UNAUTHORIZED: 401,
    E_DAEMON_NOT_FOUND: 404,
    E_DAEMON_RATE_LIMITED: 429,
    E_DAEMON_NO_AGENT: 503,
    E_DAEMON_SHUTTING_DOWN: 503,
    E_APPROVAL_NOT_FOUND: 404,
    E_APPROVAL_HASH_MISMATCH: 409,
    E_FILE_PATH: 400,
    E_FILE_NOT_FOUND: 404,
    E_FILE_TOO_LARGE: 413,
    E_POOL_FULL: 503,
    E_POOL_TIMEOUT: 503,
    E_POOL_CLOSED: 503,
    E_AUDIT_OPEN: 503,
    E_TASK_NOT_FOUND: 404,
  };
  return byCode[err.code] ?? 500;
}

/** The JSON body of an error response: `{ error: { code, message } }`. */
export function errorBody(err: unknown): { error: { code: string; message: string; details?: Record<string, unknown> } } {
  if (err instanceof LuminaError) return { error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } };
  return { error: { code: "E_DAEMON_INTERNAL", message: `Unexpected error: ${err instanceof Error ? err.message : String(err)}. See the daemon's log; report it if it repeats.` } };
}

/** E_DAEMON_NOT_FOUND with a message naming what is missing. */
export function notFound(what: string, hint: string): DaemonError {
  return new DaemonError("E_DAEMON_NOT_FOUND", `${what} not found: ${hint}`);
}

/** E_DAEMON_BAD_REQUEST. */
export function badRequest(message: string, details?: Record<string, unknown>): DaemonError {
  return new DaemonError("E_DAEMON_BAD_REQUEST", message, details ? { details } : {});
}
