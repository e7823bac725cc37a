/**
 * The sandbox's spawner: one long-lived, already confined process that starts
 * commands (images/guest/lg-guest-helper.c, `spawner`). Under emulation every
 * exec of a dynamic binary and every fork of a big process costs tens of ms;
 * the per-exec chain (fork of node → sh → setpriv → bwrap → namespaces and
 * mounts → command) cost 250-600 ms. The spawner pays that chain once, at
 * configure, and each command is then a fork of a small C process plus one
 * execve, in the same confinement: the sandbox uid, no capabilities,
 * no_new_privs, the seccomp program, bwrap's view, one pid namespace per sandbox.
 *
 * Each command gets its own session and its own child cgroup (the spawner's
 * child enters it before execve), through which the agent signals and kills
 * the whole tree and reads the limits it hit. Its stdio are pipes the spawner
 * makes; the agent (root) reopens our ends through /proc/<spawner>/fd/N, since
 * Node cannot receive descriptors over a socket.
 */
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { closeSync, constants as fsc, openSync, readFileSync } from "node:fs";
import { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { launchFor, type ExecSettings } from "./confine.js";
import type { FileAreas } from "./files.js";
import type { ExecCgroup, SandboxCgroup } from "./cgroup.js";
import { descendantPids } from "./procs.js";

/** The spawner's own processes in the sandbox cgroup: bwrap outside the pid namespace, bwrap's init, the spawner. */
export const SPAWNER_PIDS = 3;

export interface SpawnedIo {
  stdin: Socket | undefined;
  stdout: Socket;
  stderr: Socket;
}

export interface SpawnHandlers {
  started(io: SpawnedIo): void;
  /**
   * Could not start: errno and the step (cgroup, cwd, exec, fork); "spawner" when the
   * spawner ended (after the command started, or before: see `retry`).
   */
  failed(errno: number, stage: string): void;
  /** The main process ended (raw wait status). */
  exited(status: number): void;
}

export class Spawner {
  private readonly child: ChildProcess;
  private readonly channel: Duplex;
  /** Guest pid of the spawner itself (not of the chain that started it), once it said it is ready. */
  private pid: number | undefined;
  private seq = 0;
  private text = "";
  private readonly handlers = new Map<string, SpawnHandlers>();
  private dead = false;

  private constructor(
    settings: ExecSettings,
    areas: FileAreas,
    private readonly cgroups: SandboxCgroup,
    private readonly group: ExecCgroup,
    helper: string,
    private readonly log: (msg: string) => void,
  ) {
    const launch = launchFor(settings, areas, { argv: [helper, "spawner", "4", "5"], env: {}, cwd: "/", cgroupProcs: group.procsFile });
    const cgFd = openSync(cgroups.dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
    const seccompFd = launch.seccompFile ? openSync(launch.seccompFile, "r") : undefined;
    // The channel is fd 5, not stdio: bwrap's init (pid 1, the sandbox uid, dumpable) keeps its stdio.
    const stdio: StdioOptions = ["ignore", "ignore", "inherit", seccompFd ?? "ignore", cgFd, "pipe"];
    try {
      this.child = spawn(launch.argv[0]!, launch.argv.slice(1), { stdio, cwd: launch.cwd, env: launch.env });
    } finally {
      closeSync(cgFd);
      if (seccompFd !== undefined) closeSync(seccompFd);
    }
    this.child.on("error", (err) => this.die(`could not start: ${err.message}`));
    this.child.on("exit", (code, sig) => this.die(`exited (${sig ?? `code ${code}`})`));
    this.channel = (this.child.stdio as unknown as Duplex[])[5]!;
    this.channel.on("error", () => {});
    this.channel.setEncoding("latin1");
    this.channel.on("data", (s: string) => this.events(s));
  }

  /** Start the sandbox's spawner (confine must be bwrap; the sandbox cgroup must exist). */
  static start(o: { settings: ExecSettings; areas: FileAreas; cgroups: SandboxCgroup; helper: string; log(msg: string): void }): Spawner {
    const group = o.cgroups.forSpawner({ uid: o.settings.uid, gid: o.settings.gid }, SPAWNER_PIDS);
    return new Spawner(o.settings, o.areas, o.cgroups, group, o.helper, o.log);
  }

  get alive(): boolean {
    return !this.dead;
  }

  /** Run a command in the exec cgroup `cgroup`; events follow on `h`. */
  exec(o: { argv: string[]; env: Record<string, string>; cwd: string; stdin: boolean; cgroup: ExecCgroup }, h: SpawnHandlers): void {
    if (this.dead) {
      h.failed(0, "spawner");
      return;
    }
    const id = String(++this.seq);
    this.handlers.set(id, h);
    const cgName = o.cgroup.dir.slice(this.cgroups.dir.length + 1);
    const fields = ["E", id, cgName, o.stdin ? "1" : "0", o.cwd, String(o.argv.length), ...o.argv, ...Object.entries(o.env).map(([k, v]) => `${k}=${v}`)];
    this.send(fields);
  }

  /** Kill the spawner and whatever it has not handed over yet (its commands keep their own cgroups). */
  stop(): void {
    this.cgroups.kill(this.group);
    this.child.kill("SIGKILL");
    this.die("stopped");
  }

  private send(fields: string[]): void {
    const payload = Buffer.from(fields.map((f) => `${f}\0`).join(""), "utf8");
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32LE(payload.length, 0);
    this.channel.write(Buffer.concat([head, payload]));
  }

  private events(chunk: string): void {
    this.text += chunk;
    let nl: number;
    while ((nl = this.text.indexOf("\n")) >= 0) {
      const line = this.text.slice(0, nl).split(" ");
      this.text = this.text.slice(nl + 1);
      try {
        this.event(line);
      } catch (err) {
        this.log(`spawner event ${line.join(" ")}: ${(err as Error).message}`);
      }
    }
  }

  private event([kind, id, ...rest]: string[]): void {
    if (kind === "R") {
      this.pid = this.findSelf();
      if (this.pid === undefined) {
        this.log("spawner: cannot find its process; falling back to one bwrap per command");
        this.stop();
      }
      return;
    }
    const h = this.handlers.get(id ?? "");
    if (!h) return;
    const nums = rest.map(Number);
    if (kind === "S") {
      const [, inFd, outFd, errFd] = nums as [number, number, number, number];
      let io: SpawnedIo;
      try {
        io = {
          stdin: inFd >= 0 ? this.reopen(inFd, fsc.O_WRONLY) : undefined,
          stdout: this.reopen(outFd, fsc.O_RDONLY),
          stderr: this.reopen(errFd, fsc.O_RDONLY),
        };
      } finally {
        this.send(["C", id!]);
      }
      h.started(io);
    } else if (kind === "F") {
      this.handlers.delete(id!);
      h.failed(nums[0] ?? 0, rest[1] ?? "exec");
    } else if (kind === "X") {
      this.handlers.delete(id!);
      h.exited(nums[0] ?? 0);
    }
  }

  /** One of the spawner's pipe ends, opened anew by us (a new open file description of the same pipe). */
  private reopen(fd: number, flags: number): Socket {
    const own = openSync(`/proc/${this.pid}/fd/${fd}`, flags);
    return new Socket({ fd: own, readable: flags === fsc.O_RDONLY, writable: flags !== fsc.O_RDONLY });
  }

  /** The spawner's guest pid: the descendant of our child that runs `lg-guest-helper spawner`. */
  private findSelf(): number | undefined {
    if (this.child.pid === undefined) return undefined;
    for (const pid of descendantPids(this.child.pid).reverse()) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, "latin1").includes("\0spawner\0")) return pid;
      } catch {
        // gone
      }
    }
    return undefined;
  }

  private die(why: string): void {
    if (this.dead) return;
    this.dead = true;
    this.log(`spawner ${why}`);
    const pending = [...this.handlers.values()];
    this.handlers.clear();
    // Before it was ready nothing can have started: the caller may run those commands another way.
    for (const h of pending) h.failed(0, this.pid === undefined ? "spawner-unready" : "spawner");
    void this.cgroups.remove(this.group);
  }
}
