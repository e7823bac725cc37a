/**
 * Running commands for the host: spawn through the launcher chain (confine.ts),
 * stream stdout/stderr as frames, take stdin, deliver signals to the whole
 * process tree, and report the exit with signal names and the limits hit.
 *
 * Flow control: output frames go to the link's queue; while the queue is above
 * its high-water mark the child's pipes are paused, so a fast writer waits in
 * the kernel instead of in our memory. Stdin is answered once the child's pipe
 * took it, and more than MAX_PENDING_STDIN queued bytes are refused.
 *
 * A command's tree ends with it, as under bwrap's pid namespace: when the main
 * process exits, what it left behind is killed, so nothing outlives its exec.
 */
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { constants } from "node:os";
import type { Readable, Writable } from "node:stream";
import type { ExecRequest, ExitMessage } from "./protocol.js";
import { AgentError } from "./errors.js";
import { launchFor, type ExecSettings } from "./confine.js";
import type { FileAreas } from "./files.js";
import type { ExecCgroup, SandboxCgroup } from "./cgroup.js";
import { descendantPids, killQuietly } from "./procs.js";
import { Spawner, type SpawnedIo } from "./spawner.js";
import { DEFAULT_ENV } from "../sandbox/namespace/bwrap-args.js";

const MAX_PENDING_STDIN = 16 * 1024 * 1024;

/** Where an exec's frames go; `drained` resolves when the link's queue is low again. */
export interface OutputSink {
  send(header: object, body?: Uint8Array): void;
  congested(): boolean;
  drained(): Promise<void>;
}

const signalNumbers = constants.signals as Record<string, number>;
const signalNames = new Map<number, string>(Object.entries(signalNumbers).map(([k, v]) => [v, k]));

interface Running {
  child: ChildProcess;
  launchPid: number;
  bwrap: boolean;
  cgroup: ExecCgroup | undefined;
  cgroups: SandboxCgroup | undefined;
  exited: boolean;
}

/** A command started by the sandbox's spawner (spawner.ts). */
interface Spawned {
  cgroup: ExecCgroup;
  cgroups: SandboxCgroup;
  io: SpawnedIo | undefined;
  /** Settles when the spawner has started the command (or could not). */
  ready: Promise<SpawnedIo | undefined>;
  status: number | undefined;
  openStreams: number;
  exited: boolean;
  finished: boolean;
}

export class ExecTable {
  private readonly running = new Map<string, Running>();
  private readonly spawned = new Map<string, Spawned>();
  private spawner: Spawner | undefined;
  private settings: ExecSettings | undefined;

  constructor(
    private readonly out: OutputSink,
    private readonly areas: FileAreas,
    /** lg-guest-helper, which holds the spawner; without it every command gets its own bwrap. */
    private readonly helper?: string,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  get size(): number {
    return this.running.size + this.spawned.size;
  }

  /**
   * After configure: start the sandbox's spawner when commands are confined by
   * bwrap under the sandbox cgroup (and `useSpawner` is not false); otherwise, or
   * when it cannot start, each command goes through its own launcher chain.
   */
  configure(settings: ExecSettings, cgroups: SandboxCgroup | undefined, useSpawner = true): void {
    this.spawner?.stop();
    this.spawner = undefined;
    this.settings = settings;
    if (!useSpawner || !this.helper || settings.confine !== "bwrap" || !cgroups) return;
    try {
      this.spawner = Spawner.start({ settings, areas: this.areas, cgroups, helper: this.helper, log: this.log });
    } catch (err) {
      this.log(`no spawner (one bwrap per command instead): ${(err as Error).message}`);
    }
  }

  /** Start a command; its events follow on `out`. Returns the launcher's pid (undefined when it could not start). */
  start(req: ExecRequest, settings: ExecSettings, cgroups: SandboxCgroup | undefined): number | undefined {
    validate(req);
    if (this.running.has(req.execId) || this.spawned.has(req.execId)) throw new AgentError("E_EXEC_INVALID", `An exec with id ${req.execId} is already running.`);
    if (this.spawner?.alive && settings.confine === "bwrap" && cgroups) {
      this.startSpawned(req, this.spawner, cgroups);
      return undefined;
    }
    const cgroup = cgroups?.forExec();
    const launch = launchFor(settings, this.areas, { argv: req.argv, env: req.env, cwd: req.cwd, cgroupProcs: cgroup?.procsFile });
    const stdio: StdioOptions = [req.stdin ? "pipe" : "ignore", "pipe", "pipe"];
    let seccompFd: number | undefined;
    if (launch.seccompFile) {
      seccompFd = openSync(launch.seccompFile, "r");
      stdio.push(seccompFd);
    }
    let child: ChildProcess;
    try {
      // A session (and process group) of its own: signals reach the whole tree through the group.
      child = spawn(launch.argv[0]!, launch.argv.slice(1), { stdio, cwd: launch.cwd, env: launch.env, detached: true });
    } catch (err) {
      if (cgroup) void cgroups!.remove(cgroup);
      throw new AgentError("E_SANDBOX_START", `Could not start ${req.argv[0]}: ${(err as Error).message}`);
    } finally {
      // The child holds its own copy of the fd now.
      if (seccompFd !== undefined) closeSync(seccompFd);
    }
    const run: Running = { child, launchPid: child.pid ?? -1, bwrap: launch.exitCodeEncodesSignal, cgroup, cgroups, exited: false };
    this.running.set(req.execId, run);
    child.stdin?.on("error", () => {}); // EPIPE after the command exited is not the host's error
    this.pipe(req.execId, "stdout", child.stdout!);
    this.pipe(req.execId, "stderr", child.stderr!);

    let spawnError: Error | undefined;
    child.once("error", (err) => {
      spawnError = err;
    });
    child.once("exit", () => {
      run.exited = true;
      // What the command left behind dies with it (bwrap's pid namespace does this by itself).
      if (!run.bwrap) this.killTree(run, "SIGKILL", true);
      else if (cgroup) cgroups!.kill(cgroup);
    });
    child.once("close", (code, sig) => {
      run.exited = true;
      let exit: ExitMessage;
      if (spawnError && child.pid === undefined) {
        // Could not exec at all (e.g. the program does not exist): report it like a shell would.
        this.out.send({ type: "stderr", execId: req.execId }, Buffer.from(`luminaguard agent: cannot run ${req.argv[0]}: ${spawnError.message}\n`));
        exit = { type: "exit", execId: req.execId, exitCode: (spawnError as NodeJS.ErrnoException).code === "ENOENT" ? 127 : 126, signal: null };
      } else {
        const fromCode = launch.exitCodeEncodesSignal && code !== null && code > 128 && code <= 128 + 64 ? (signalNames.get(code - 128) ?? null) : null;
        exit = { type: "exit", execId: req.execId, exitCode: fromCode ? null : code, signal: fromCode ?? sig };
      }
      if (cgroup) {
        const hit = cgroups!.events(cgroup);
        if (hit.oom) exit.oom = true;
        if (hit.pidsLimit) exit.pidsLimit = true;
        void cgroups!.remove(cgroup);
      }
      this.running.delete(req.execId);
      this.out.send(exit);
    });
    return child.pid;
  }

  /** Write to a command's stdin; resolves once its pipe took the bytes. */
  async stdin(execId: string, data: Uint8Array): Promise<void> {
    await this.spawned.get(execId)?.ready;
    const pipe = this.stdinOf(execId);
    if (!pipe || pipe.destroyed || pipe.writableEnded) {
      throw new AgentError("E_SANDBOX_DESTROYED", "The command's stdin is closed; it has exited or stdin was closed.");
    }
    if (pipe.writableLength + data.byteLength > MAX_PENDING_STDIN) {
      throw new AgentError("E_EXEC_INVALID", `More than ${MAX_PENDING_STDIN} bytes of stdin are waiting for the command; await each write() before sending more.`);
    }
    await new Promise<void>((resolve, reject) => {
      pipe.write(data, (err) => (err ? reject(new AgentError("E_SANDBOX_DESTROYED", `Writing to the command's stdin failed: ${err.message}`)) : resolve()));
    });
  }

  /** Close a command's stdin (EOF). Unknown or finished commands are fine: the race with exit is normal. */
  closeStdin(execId: string): void {
    const sp = this.spawned.get(execId);
    if (sp) void sp.ready.then(() => this.stdinOf(execId)?.end());
    else this.running.get(execId)?.child.stdin?.end();
  }

  private stdinOf(execId: string): Writable | null | undefined {
    const sp = this.spawned.get(execId);
    return sp ? sp.io?.stdin : this.running.get(execId)?.child.stdin;
  }

  /** Send a signal to a command's whole tree; a finished command is fine. */
  signal(execId: string, signal: string): void {
    if (!Object.hasOwn(signalNumbers, signal) || !signal.startsWith("SIG")) {
      throw new AgentError("E_EXEC_INVALID", `Unknown signal ${JSON.stringify(signal)}; use a name like SIGTERM.`);
    }
    const run = this.running.get(execId);
    if (run && !run.exited) this.killTree(run, signal as NodeJS.Signals, false);
    const sp = this.spawned.get(execId);
    if (sp && !sp.exited) this.killSpawned(sp, signal as NodeJS.Signals);
  }

  /** SIGKILL every running command (the host that started them is gone). */
  killAll(): void {
    for (const run of this.running.values()) this.killTree(run, "SIGKILL", false);
    for (const sp of this.spawned.values()) this.killSpawned(sp, "SIGKILL");
  }

  /** Every process of the command's cgroup gets the signal (also those that left its session). */
  private killSpawned(sp: Spawned, signal: NodeJS.Signals): void {
    if (signal === "SIGKILL") sp.cgroups.kill(sp.cgroup);
    for (const pid of sp.cgroups.pids(sp.cgroup)) killQuietly(pid, signal);
  }

  private startSpawned(req: ExecRequest, spawner: Spawner, cgroups: SandboxCgroup): void {
    const cgroup = cgroups.forExec();
    let settle!: (io: SpawnedIo | undefined) => void;
    const sp: Spawned = { cgroup, cgroups, io: undefined, ready: new Promise((r) => (settle = r)), status: undefined, openStreams: 0, exited: false, finished: false };
    this.spawned.set(req.execId, sp);
    const finish = (exit: ExitMessage): void => {
      if (sp.finished) return;
      sp.finished = true;
      sp.exited = true;
      const hit = cgroups.events(cgroup);
      if (hit.oom) exit.oom = true;
      if (hit.pidsLimit) exit.pidsLimit = true;
      void cgroups.remove(cgroup);
      this.spawned.delete(req.execId);
      this.out.send(exit);
    };
    const maybeFinish = (): void => {
      if (sp.status === undefined || sp.openStreams > 0) return;
      const st = sp.status;
      const sig = st & 0x7f;
      finish({ type: "exit", execId: req.execId, exitCode: sig === 0 ? (st >> 8) & 0xff : null, signal: sig === 0 ? null : (signalNames.get(sig) ?? `SIG${sig}`) });
    };
    const settings = this.settings;
    spawner.exec(
      { argv: req.argv, env: { ...DEFAULT_ENV, ...req.env }, cwd: req.cwd, stdin: req.stdin, cgroup },
      {
        started: (io) => {
          sp.io = io;
          io.stdin?.on("error", () => {});
          for (const [type, stream] of [["stdout", io.stdout], ["stderr", io.stderr]] as const) {
            sp.openStreams++;
            stream.on("error", () => {});
            stream.once("close", () => {
              sp.openStreams--;
              maybeFinish();
            });
            this.pipe(req.execId, type, stream);
          }
          settle(io);
        },
        failed: (errno, stage) => {
          if (stage === "spawner-unready" && settings && !sp.io) {
            // The spawner never came up (logged): this command gets its own bwrap instead.
            this.spawned.delete(req.execId);
            void cgroups.remove(cgroup);
            try {
              this.start(req, settings, cgroups);
            } catch (err) {
              this.out.send({ type: "stderr", execId: req.execId }, Buffer.from(`luminaguard agent: ${(err as Error).message}\n`));
              this.out.send({ type: "exit", execId: req.execId, exitCode: 126, signal: null });
            }
            settle(undefined);
            return;
          }
          settle(undefined);
          // What the command left behind (if it had started before the spawner died) goes too.
          cgroups.kill(cgroup);
          sp.io?.stdout.destroy();
          sp.io?.stderr.destroy();
          sp.io?.stdin?.destroy();
          const why =
            stage === "spawner" ? "the sandbox's command launcher ended" : stage === "cwd" ? `cannot change to ${req.cwd}: ${errnoText(errno)}` : `cannot run ${req.argv[0]}: ${errnoText(errno)}`;
          this.out.send({ type: "stderr", execId: req.execId }, Buffer.from(`luminaguard agent: ${why}\n`));
          const code = stage === "exec" ? (errno === 2 ? 127 : 126) : stage === "spawner" ? null : 1;
          finish({ type: "exit", execId: req.execId, exitCode: code, signal: code === null ? "SIGKILL" : null });
        },
        exited: (status) => {
          sp.status = status;
          sp.exited = true;
          // What the command left behind dies with it, as with bwrap's pid namespace.
          cgroups.kill(cgroup);
          maybeFinish();
        },
      },
    );
  }

  private pipe(execId: string, type: "stdout" | "stderr", stream: Readable): void {
    stream.on("data", (chunk: Buffer) => {
      this.out.send({ type, execId }, chunk);
      if (this.out.congested() && !stream.isPaused()) {
        stream.pause();
        void this.out.drained().then(() => stream.resume());
      }
    });
  }

  /**
   * Signal the tree. bwrap: SIGKILL goes to its init (pid 1 of the command's pid
   * namespace: when it dies the kernel kills the namespace); other signals go to
   * the command's processes, since the init ignores them by design. Without bwrap:
   * the process group, plus descendants that left it. The cgroup kills everything
   * at once where we have one.
   */
  private killTree(run: Running, signal: NodeJS.Signals, afterExit: boolean): void {
    if (run.launchPid < 0) return;
    // Not every kernel has cgroup.kill; the pid-based kill below always runs too.
    if (signal === "SIGKILL" && run.cgroup) run.cgroups?.kill(run.cgroup);
    if (run.bwrap) {
      const tree = descendantPids(run.launchPid);
      if (signal === "SIGKILL") {
        if (tree[0] !== undefined) killQuietly(tree[0], "SIGKILL");
        killQuietly(run.launchPid, "SIGKILL");
        return;
      }
      if (tree.length <= 1) killQuietly(run.launchPid, signal);
      for (const pid of tree.slice(1)) killQuietly(pid, signal);
      return;
    }
    // Descendants that moved to another process group; after the exit they are orphans we can no longer find by pid.
    const strays = !afterExit && signal === "SIGKILL" ? descendantPids(run.launchPid) : [];
    killQuietly(-run.launchPid, signal);
    for (const pid of strays) killQuietly(pid, signal);
  }
}

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([k, v]) => [v, k]));

function errnoText(errno: number): string {
  return errno === 2 ? "No such file or directory" : errno === 13 ? "Permission denied" : (errnoNames.get(errno) ?? `errno ${errno}`);
}

function validate(req: ExecRequest): void {
  if (req.argv.length === 0 || req.argv.some((a) => a.includes("\0"))) {
    throw new AgentError("E_EXEC_INVALID", "exec needs a non-empty argv of strings without NUL bytes.");
  }
  for (const [k, v] of Object.entries(req.env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || v.includes("\0")) {
      throw new AgentError("E_EXEC_INVALID", `Invalid environment variable ${JSON.stringify(k)}: names are letters, digits and _, values have no NUL bytes.`);
    }
  }
  if (!req.cwd.startsWith("/") || req.cwd.includes("\0")) {
    throw new AgentError("E_EXEC_INVALID", `cwd must be an absolute path inside the sandbox, got ${JSON.stringify(req.cwd)}.`);
  }
}
