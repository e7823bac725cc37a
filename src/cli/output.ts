/** Printing helpers shared by commands: errors as one clear line, exit codes. */
import { LuminaError, UsageError } from "../errors.js";

/** Exit codes of `luminaguard` itself (commands' own codes pass through `exec`). */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  timeout: 124,
  runtime: 125,
} as const;

/** Print an error the way a user should see it: code and message, no stack (LUMINAGUARD_DEBUG=1 shows it). */
export function printError(err: unknown): void {
  if (err instanceof LuminaError) {
    process.stderr.write(`luminaguard: ${err.message} [${err.code}]\n`);
  } else {
    process.stderr.write(`luminaguard: unexpected error: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  if (process.env.LUMINAGUARD_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
}

/** The exit code for an error that ended a command. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError || (err instanceof LuminaError && err.code === "E_CONFIG")) return EXIT.usage;
  if (err instanceof LuminaError && err.code === "E_EXEC_TIMEOUT") return EXIT.timeout;
  return err instanceof LuminaError ? EXIT.runtime : EXIT.failure;
}
