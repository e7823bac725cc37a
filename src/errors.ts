/**
 * The base of every error LuminaGuard throws on purpose.
 *
 * `code` is stable (scripts and the API match on it); `message` says what went
 * wrong and what to do about it; `cause` keeps the low-level error for logs.
 */
export class LuminaError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details;
  }

  /** A plain object for JSON output (CLI --json, API responses). */
  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** True when `err` is a LuminaError with the given code. */
export function hasCode(err: unknown, code: string): boolean {
  return err instanceof LuminaError && err.code === code;
}

/** Bad input from a user or caller (flags, config, spec). The CLI exits 2 on these. */
export class UsageError extends LuminaError {
  constructor(message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super("E_USAGE", message, options);
  }
}
