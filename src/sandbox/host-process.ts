/**
 * An ExecHandle over a host child process that represents one command running in
 * a sandbox (bwrap, runsc, ...). The backend supplies how to kill the tree and how
 * to explain an ending (OOM, pids limit); this file owns streams, timeouts, abort.
 */
import { spawn, type StdioOptions } from "node:child_process";
import type { ExecHandle, ExecResult } from "./types.js";
import { SandboxError } from "./errors.js";
import { signalFromExitCode } from "./signals.js";
import { endingError, watchEnding } from "./exec-ending.js";

export interface HostProcessOptions {
  /** Full host argv (the launcher chain ending in the sandboxed command). */
  argv: string[];
  /** Environment of the launcher itself (the sandboxed command's env is set by the launcher). */
  launcherEnv: Record<string, string>;
  /** Extra fds for the child, from fd 3 on (e.g. a seccomp program for bwrap). */
  extraFds?: number[];
  stdin?: string | Uint8Array | undefined;
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Launchers like bwrap report a child's death by signal N as exit 128+N. */
  exitCodeEncodesSignal: boolean;
  /** Send a signal to every process of this command (not only the launcher). */
  killTree(pid: number, signal: NodeJS.Signals): void;
  /** After exit, before `explain`: facts to add to the result (e.g. a full scratch disk). */
  annotate?(result: ExecResult): Promise<ExecResult>;
  /** After exit: an error that explains the ending better than the exit code, if any. */
  explain?(result: ExecResult): Promise<SandboxError | undefined>;
  /** Called once the process and its streams have ended. */
  onDone?(): void;
}

/** Start the process and return its handle. Never throws; start failures reject wait(). */
export function startHostProcess(opts: HostProcessOptions): ExecHandle {
  const started = performance.now();
  const stdio: StdioOptions = ["pipe", "pipe", "pipe", ...(opts.extraFds ?? [])];
  const child = spawn(opts.argv[0]!, opts.argv.slice(1), {
    stdio,
    env: opts.launcherEnv,
    // A session of its own: a terminal's Ctrl-C reaches only us, and we end the
    // sandbox deliberately (abort → kill the tree → E_EXEC_ABORTED), never halfway.
    detached: true,
  });
  let exited = false;

  const killAll = (sig: NodeJS.Signals): void => {
    if (exited || child.pid === undefined) return;
    opts.killTree(child.pid, sig);
  };
  const watch = watchEnding({ timeoutMs: opts.timeoutMs, signal: opts.signal, kill: () => killAll("SIGKILL") });

  // A closed stdin on a process that already exited raises EPIPE; that is not an error of the caller.
  child.stdin?.on("error", () => {});
  if (opts.stdin !== undefined) child.stdin?.end(opts.stdin);

  const done = new Promise<ExecResult>((resolve, reject) => {
    child.once("error", (err) => {
      exited = true;
      reject(
        new SandboxError("E_SANDBOX_START", `Could not start the sandbox launcher ${opts.argv[0]}: ${err.message}. Run \`luminaguard doctor\` to see what this host is missing.`, { cause: err }),
      );
    });
    child.once("close", (code, sig) => {
      exited = true;
      const fromCode = opts.exitCodeEncodesSignal ? signalFromExitCode(code) : null;
      resolve({
        exitCode: fromCode ? null : code,
        signal: fromCode ?? sig,
        durationMs: performance.now() - started,
      });
    });
  }).finally(() => {
    watch.clear();
    opts.onDone?.();
  });

  const result = done.then(async (raw) => {
    const res = opts.annotate ? await opts.annotate(raw) : raw;
    if (watch.ending) throw endingError(watch.ending, res, opts.timeoutMs);
    const explained = await opts.explain?.(res);
    if (explained) throw explained;
    return res;
  });
  // wait() may never be called (fire-and-forget kill); keep Node from reporting an unhandled rejection.
  result.catch(() => {});

  return {
    stdout: child.stdout!,
    stderr: child.stderr!,
    write: (data) =>
      new Promise<void>((resolve, reject) => {
        if (!child.stdin || child.stdin.destroyed || child.stdin.writableEnded) {
          reject(new SandboxError("E_SANDBOX_DESTROYED", "The command's stdin is closed; it has exited or stdin was given up front."));
          return;
        }
        child.stdin.write(data, (err) => (err ? reject(new SandboxError("E_SANDBOX_DESTROYED", `Writing to the command's stdin failed: ${err.message}`, { cause: err })) : resolve()));
      }),
    closeStdin: () => {
      child.stdin?.end();
    },
    kill: (sig = "SIGTERM") => killAll(sig),
    wait: () => result,
  };
}
