/**
 * An ExecHandle over a command that runs inside a guest (a micro-VM) and is
 * driven through the guest agent. The twin of host-process.ts: the same
 * timeout/abort/limit semantics, but the process tree lives in another kernel,
 * so "kill the tree" is a message to the agent and "the launcher died" means the
 * VM or its agent went away.
 */
import type { ExecHandle, ExecResult } from "./types.js";
import { SandboxError } from "./errors.js";
import type { GuestProcess } from "./agent-client.js";
import { endingError, watchEnding } from "./exec-ending.js";

export interface GuestExecOptions {
  stdin?: string | Uint8Array | undefined;
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  limits: { memoryBytes: number; pids: number };
  /** Why the command could not finish when the guest went away (VM crashed vs agent silent). */
  lostReason?(): Promise<SandboxError | undefined>;
  onDone?(): void;
}

const MIB = 1024 * 1024;

export function guestExec(proc: GuestProcess, opts: GuestExecOptions): ExecHandle {
  const started = performance.now();
  let exited = false;
  const killAll = (sig: NodeJS.Signals): void => {
    if (!exited) proc.kill(sig);
  };
  const watch = watchEnding({ timeoutMs: opts.timeoutMs, signal: opts.signal, kill: () => killAll("SIGKILL") });

  if (opts.stdin !== undefined) {
    const data = opts.stdin;
    void proc
      .write(data)
      .then(() => proc.closeStdin())
      .catch(() => {}); // the command may exit without reading its stdin; not the caller's error
  }

  const result = proc.exited
    .finally(() => {
      exited = true;
      watch.clear();
      opts.onDone?.();
    })
    .then(
      (end): ExecResult => {
        const res: ExecResult = { exitCode: end.exitCode, signal: end.signal, durationMs: performance.now() - started };
        if (watch.ending) throw endingError(watch.ending, res, opts.timeoutMs);
        if (end.oom) {
          throw new SandboxError("E_OOM", `The sandbox ran out of memory (limit ${Math.round(opts.limits.memoryBytes / MIB)} MiB) and the kernel killed the command. Raise the memory limit (--memory) or make the task use less.`, { details: { result: res, limitBytes: opts.limits.memoryBytes } });
        }
        if (end.pidsLimit && res.exitCode !== 0) {
          throw new SandboxError("E_PIDS_LIMIT", `The command hit the sandbox's process limit (${opts.limits.pids}) and failed; a fork bomb or a very parallel build does this. Raise --pids if the work is legitimate.`, { details: { result: res, limit: opts.limits.pids } });
        }
        return res;
      },
      async (err: unknown) => {
        // The channel died: say whether the VM crashed or the agent went silent.
        throw (await opts.lostReason?.()) ?? err;
      },
    );
  // wait() may never be called (fire-and-forget kill); keep Node from reporting an unhandled rejection.
  result.catch(() => {});

  return {
    stdout: proc.stdout,
    stderr: proc.stderr,
    write: (data) => proc.write(data),
    closeStdin: () => proc.closeStdin(),
    kill: (sig = "SIGTERM") => killAll(sig),
    wait: () => result,
  };
}
