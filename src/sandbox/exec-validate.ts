/** Checks on exec() input shared by every backend, so a bad call fails the same way everywhere. */
import type { ExecOptions } from "./types.js";
import { SandboxError } from "./errors.js";

/** Throws E_EXEC_INVALID for an empty or non-string argv, a bad env name or value, or a relative cwd. */
export function validateExec(argv: string[], opts: ExecOptions): void {
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== "string" || a.includes("\0"))) {
    throw new SandboxError("E_EXEC_INVALID", "exec needs a non-empty argv of strings without NUL bytes, e.g. [\"sh\", \"-c\", \"echo hi\"].");
  }
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || v.includes("\0")) {
      throw new SandboxError("E_EXEC_INVALID", `Invalid environment variable ${JSON.stringify(k)}: names are letters, digits and _, values have no NUL bytes.`);
    }
  }
  if (opts.cwd !== undefined && !opts.cwd.startsWith("/")) {
    throw new SandboxError("E_EXEC_INVALID", `cwd must be an absolute path inside the sandbox, got ${JSON.stringify(opts.cwd)}.`);
  }
}

