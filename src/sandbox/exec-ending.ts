/**
 * The runtime's reasons to end a command early, shared by every ExecHandle
 * implementation (host processes, guest processes): a timeout and the caller's
 * abort both kill the whole tree, and the wait() that follows reports why.
 */
import type { ExecResult } from "./types.js";
import { SandboxError } from "./errors.js";

export type Ending = "timeout" | "abort";

export interface EndingWatch {
  /** Why the runtime ended the command, if it did. */
  readonly ending: Ending | undefined;
  /** Stop watching (the command has exited). */
  clear(): void;
}

/** Arm the timeout and the abort signal; either one calls `kill` once. */
export function watchEnding(opts: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined; kill: () => void }): EndingWatch {
  let ending: Ending | undefined;
  const end = (why: Ending): void => {
    if (ending) return;
    ending = why;
    opts.kill();
  };
  const timer = opts.timeoutMs !== undefined && opts.timeoutMs > 0 ? setTimeout(() => end("timeout"), opts.timeoutMs) : undefined;
  const onAbort = (): void => end("abort");
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener("abort", onAbort, { once: true });
  return {
    get ending() {
      return ending;
    },
    clear: () => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
    },
  };
}

/** The error wait() rejects with when the runtime ended the command. */
export function endingError(ending: Ending, res: ExecResult, timeoutMs: number | undefined): SandboxError {
  if (ending === "timeout") {
    return new SandboxError("E_EXEC_TIMEOUT", `The command ran longer than its ${timeoutMs} ms timeout and was killed with everything it started. Raise the timeout if it needs more time.`, { details: { result: res } });
  }
  return new SandboxError("E_EXEC_ABORTED", "The command was cancelled and killed with everything it started.", { details: { result: res } });
}
