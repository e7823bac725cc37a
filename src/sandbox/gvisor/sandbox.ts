/**
 * One gVisor sandbox: a long-lived runsc container (its sentry and gofer run in
 * the sandbox's host cgroup) plus one `runsc exec` of the launcher per command.
 * Execs share the sandbox's kernel, files and limits; each has its own PID
 * namespace inside, so killing one command's tree never touches another's.
 *
 * Signals cannot go to the host `runsc exec` process (it does not forward them
 * and its death leaves the command running), so kill() asks runsc to signal the
 * launcher inside (`runsc kill --pid`), which passes them on (see launcher.ts).
 */
import { constants } from "node:os";
import { readFileSync } from "node:fs";
import { readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { ExecHandle, ExecOptions, ExecResult, Sandbox, SandboxFiles, SandboxSpec } from "../types.js";
import { SandboxError, sandboxDestroyed } from "../errors.js";
import { startHostProcess } from "../host-process.js";
import { execFiles } from "../exec-files.js";
import { killQuietly } from "../proc-tree.js";
import { validateExec } from "../exec-validate.js";
import { DEFAULT_ENV } from "../namespace/bwrap-args.js";
import { formatSize } from "../../config/size.js";
import type { SandboxNetwork } from "../network.js";
import type { SandboxCgroup } from "../../policy/limits/index.js";
import type { SandboxIdentity } from "./host.js";
import { LAUNCHER_CAPS, SECCOMP_PATH, launchArgv } from "./launcher.js";
import { globalArgs, runRunsc, type RunscConfig } from "./runsc.js";
import { withDiskState, type ScratchDisk } from "../scratch-disk.js";

export interface GvisorSandboxParts {
  id: string;
  spec: SandboxSpec;
  runsc: RunscConfig;
  /** runsc's --network value for this container. */
  networkMode: "none" | "host" | "sandbox";
  identity: SandboxIdentity;
  /** The sandbox's scratch folder (bundle, control files, and the disk). */
  dir: string;
  /** The size-limited tmpfs under `dir` holding tmp and (unless the caller gave one) the workspace. */
  disk: ScratchDisk;
  cgroup: SandboxCgroup;
  network: SandboxNetwork | undefined;
  /** Host pid of the sandbox's sentry (runsc-sandbox), to tell a crash from a command's failure. */
  sentryPid: number;
}

interface RunningExec {
  handle: ExecHandle;
  /** Written by runsc: the launcher's pid in the sandbox's root PID namespace. */
  pidFile: string;
  /** Host pid of the `runsc exec` process (known once a kill asked for it). */
  hostPid: number | undefined;
  done: boolean;
}

/** How long a kill waits for runsc to write the launcher's pid (the exec may still be starting). */
const PID_FILE_WAIT_MS = 15_000;
/** After a SIGKILL through runsc, how long before the host `runsc exec` process is killed too. */
const HOST_KILL_GRACE_MS = 3_000;

export class GvisorSandbox implements Sandbox {
  readonly id: string;
  readonly backend = "gvisor" as const;
  readonly spec: SandboxSpec;
  readonly files: SandboxFiles;
  readonly network: SandboxNetwork | undefined;
  private readonly running = new Set<RunningExec>();
  private readonly global: string[];
  private execCount = 0;
  private lastOomKills = 0;
  private lost: { oom: boolean } | undefined;
  private destroying: Promise<void> | undefined;

  constructor(private readonly parts: GvisorSandboxParts) {
    this.id = parts.id;
    this.spec = parts.spec;
    this.network = parts.network;
    this.global = globalArgs(parts.runsc, parts.networkMode);
    this.files = execFiles((argv, opts) => this.exec(argv, opts), parts.spec.maxFileBytes);
  }

  get destroyed(): boolean {
    return this.destroying !== undefined;
  }

  /**
   * Set when the sandbox's gVisor kernel is gone (the sentry died or the host's OOM
   * killer took it), also while idle: nothing watches the sentry, so this looks
   * (two /proc reads), and the pool asks before it hands a sandbox out.
   */
  get broken(): SandboxError | undefined {
    if (this.destroying) return undefined;
    if (!this.lost && !this.sentryAlive()) this.lost = { oom: false };
    return this.lost ? this.lostError() : undefined;
  }

  exec(argv: string[], opts: ExecOptions = {}): ExecHandle {
    if (this.destroying) {
      throw sandboxDestroyed(this.id);
    }
    if (this.lost) throw this.lostError();
    validateExec(argv, opts);
    const { identity, runsc } = this.parts;
    const pidFile = join(this.parts.dir, `exec-${++this.execCount}.pid`);
    const inner = launchArgv({
      uid: identity.uid,
      gid: identity.gid,
      nproc: this.spec.limits.pids,
      cwd: opts.cwd ?? "/workspace",
      seccompPath: SECCOMP_PATH,
      env: { ...DEFAULT_ENV, ...this.network?.env(), ...opts.env },
      argv,
    });
    const caps = LAUNCHER_CAPS.flatMap((c) => ["--cap", c]);
    const entry: RunningExec = { handle: undefined as unknown as ExecHandle, pidFile, hostPid: undefined, done: false };
    entry.handle = startHostProcess({
      argv: [runsc.path, ...this.global, "exec", "--user", "0:0", ...caps, "--internal-pid-file", pidFile, this.id, ...inner],
      launcherEnv: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
      stdin: opts.stdin,
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
      // The launcher reports a death by signal N as 128+N, and so does runsc exec.
      exitCodeEncodesSignal: true,
      killTree: (hostPid, sig) => {
        entry.hostPid = hostPid;
        void this.signalExec(entry, sig);
      },
      annotate: (res) => withDiskState(res, this.parts.disk),
      explain: (res) => this.explainEnding(res),
      onDone: () => {
        entry.done = true;
        this.running.delete(entry);
        void rm(pidFile, { force: true });
      },
    });
    this.running.add(entry);
    return entry.handle;
  }

  /** Deliver `sig` to one exec's launcher inside the sandbox, which passes it to the command's whole tree. */
  private async signalExec(entry: RunningExec, sig: NodeJS.Signals): Promise<void> {
    let delivered = false;
    // A destroyed or crashed sandbox has no launcher left to signal.
    const innerPid = this.destroying || this.lost ? undefined : await this.launcherPid(entry);
    if (innerPid !== undefined && !entry.done) {
      const num = constants.signals[sig];
      const res = await runRunsc(this.parts.runsc.path, [...this.global, "kill", "--pid", String(innerPid), this.id, String(num)], { timeoutMs: 10_000 });
      delivered = res.code === 0;
    }
    if (sig !== "SIGKILL") return;
    // The launcher's death ends its namespace and then `runsc exec`; if the sandbox is gone or
    // wedged, end the host process so wait() still settles.
    const deadline = Date.now() + (delivered ? HOST_KILL_GRACE_MS : 0);
    while (!entry.done && Date.now() < deadline) await sleep(25);
    if (!entry.done && entry.hostPid !== undefined) killQuietly(entry.hostPid, "SIGKILL");
  }

  /** The launcher's pid once runsc has written it; undefined when the exec ended first. */
  private async launcherPid(entry: RunningExec): Promise<number | undefined> {
    const deadline = Date.now() + PID_FILE_WAIT_MS;
    while (!entry.done && Date.now() < deadline) {
      const text = await readFile(entry.pidFile, "utf8").catch(() => "");
      const pid = Number(text.trim());
      if (text.trim() !== "" && Number.isSafeInteger(pid) && pid > 0) return pid;
      await sleep(10);
    }
    return undefined;
  }

  /**
   * A failed ending caused by the sandbox rather than the command: the host OOM
   * killer took (part of) gVisor because the sandbox used more than its memory
   * limit, or the sentry died. Either way the sandbox is lost.
   */
  private async explainEnding(res: ExecResult): Promise<SandboxError | undefined> {
    if (res.exitCode === 0 || this.destroying) return undefined;
    let oom = false;
    try {
      const events = await this.parts.cgroup.events();
      oom = events.oomKills > this.lastOomKills;
      this.lastOomKills = events.oomKills;
    } catch {
      // cgroup gone: destroyed meanwhile
    }
    if (oom) {
      this.lost ??= { oom: true };
      const { memoryBytes } = this.spec.limits;
      return new SandboxError("E_OOM", `The sandbox ran out of memory (limit ${formatSize(memoryBytes)}) and the host killed its gVisor kernel, so this sandbox is gone. Raise the memory limit (--memory) or make the task use less, then use a new sandbox.`, {
        details: { result: res, limitBytes: memoryBytes },
      });
    }
    if (!this.sentryAlive()) {
      this.lost ??= { oom: false };
      return this.lostError({ result: res });
    }
    return undefined;
  }

  private lostError(details: Record<string, unknown> = {}): SandboxError {
    const why = this.lost?.oom ? " after it ran out of memory" : "";
    return new SandboxError("E_SANDBOX_CRASHED", `The gVisor sandbox ${this.id} stopped${why} (its runsc-sandbox process is gone). Destroy it and use a new sandbox; run \`luminaguard doctor\` if this repeats.`, { details: { sandbox: this.id, ...details } });
  }

  /** Whether the sentry still runs (its pid could be reused, so its argv must name this sandbox). */
  private sentryAlive(): boolean {
    const pid = this.parts.sentryPid;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "latin1").includes(`${this.id}\0`)) return false;
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      // "pid (comm) S ...": the state letter follows the last ')'; Z is a zombie.
      return stat.charAt(stat.lastIndexOf(")") + 2) !== "Z";
    } catch {
      return false;
    }
  }

  async destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    const errors: unknown[] = [];
    const execs = [...this.running];
    // The sentry, the gofer and every ptrace stub are in the sandbox's cgroup: killing them
    // there takes milliseconds, where `runsc delete --force` polls for ~1.5 s.
    await this.parts.cgroup.destroy().catch((e: unknown) => errors.push(e));
    // Their `runsc exec` processes end once the sandbox is gone; do not wait on a wedged one.
    const deadline = Date.now() + HOST_KILL_GRACE_MS;
    while (execs.some((e) => !e.done) && Date.now() < deadline) await sleep(25);
    for (const e of execs) {
      if (e.done) continue;
      e.handle.kill("SIGKILL"); // records the host pid
      if (e.hostPid !== undefined) killQuietly(e.hostPid, "SIGKILL");
    }
    // runsc keeps nothing else on the host for our containers (no cgroups, no network of its own).
    await removeStateFiles(this.parts.runsc.root, this.id).catch((e: unknown) => errors.push(e));
    await this.network?.release().catch((e: unknown) => errors.push(e));
    // The gofer that served the disk died with the cgroup.
    await this.parts.disk.release().catch((e: unknown) => errors.push(e));
    // Bundle, tmp, control files and (unless it is the caller's) the workspace; rm never follows symlinks.
    await rm(this.parts.dir, { recursive: true, force: true, maxRetries: 3 }).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw errors[0];
  }
}

/** runsc's state files of one container (`<id>_sandbox:<id>.state`, `.lock`), when `runsc delete` could not remove them. */
async function removeStateFiles(root: string, id: string): Promise<void> {
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (name.startsWith(`${id}_`)) await rm(join(root, name), { force: true });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
