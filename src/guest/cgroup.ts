/**
 * Limits inside the guest (best effort): one cgroup v2 for the whole sandbox
 * with memory.max and pids.max, and a child cgroup per exec, which tells which
 * command hit a limit (memory.events oom_kill, pids.events max) and kills a
 * whole tree at once (cgroup.kill). Skipped, with a reason, where there is no
 * cgroup2 with the memory and pids controllers we may enable: the guest's init
 * mounts one and the agent runs in its root; a host running the agent for tests
 * usually has none we may use, and we never create cgroups outside our own.
 *
 * cgroupfs writes are in-kernel and microsecond-cheap, so they run synchronously.
 */
import { chownSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AgentError, errnoOf } from "./errors.js";

export interface LimitValues {
  memoryBytes: number;
  pids: number;
}

export interface ExecCgroup {
  dir: string;
  procsFile: string;
  /** pids.events max of the sandbox cgroup when the exec started (some kernels count there, not in the child). */
  sandboxPidsMaxBefore: number;
}

/** Where this process's cgroup v2 lives, or why we cannot use it. */
export function findOwnCgroup2(): { base: string } | { reason: string } {
  let mountPoint: string | undefined;
  try {
    for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
      // "... mountpoint options - fstype source superopts": fstype follows the " - " separator.
      const sep = line.indexOf(" - ");
      if (sep < 0 || !line.slice(sep + 3).startsWith("cgroup2 ")) continue;
      mountPoint = line.split(" ")[4];
      break;
    }
  } catch {
    return { reason: "cannot read /proc/self/mountinfo" };
  }
  if (!mountPoint) return { reason: "no cgroup2 file system is mounted" };
  const own = readFileSync("/proc/self/cgroup", "utf8").split("\n").find((l) => l.startsWith("0::"));
  if (!own) return { reason: "this process is not in a cgroup v2" };
  const base = join(mountPoint, own.slice(3));
  const controllers = readText(join(base, "cgroup.controllers")).split(/\s+/);
  if (!controllers.includes("memory") || !controllers.includes("pids")) {
    return { reason: `cgroup2 at ${base} does not offer the memory and pids controllers` };
  }
  return { base };
}

export class SandboxCgroup {
  private seq = 0;
  private limits: LimitValues | undefined;
  /** Processes of ours counted in pids.max besides the commands' (the spawner's chain): added to the limit. */
  private extraPids = 0;
  /** Set when the sandbox user may move processes between our child cgroups (the spawner does, into each exec's). */
  private delegatedTo: { uid: number; gid: number } | undefined;

  private constructor(readonly dir: string) {}

  /** Create (or reuse) the sandbox cgroup under our own and set the limits. */
  static setup(limits: LimitValues): SandboxCgroup {
    const found = findOwnCgroup2();
    if ("reason" in found) throw new AgentError("E_CGROUP", `No limits in the guest: ${found.reason}.`);
    try {
      // The root cgroup may hold processes and still enable controllers; a non-root one with us in it may not (EBUSY).
      writeFileSync(join(found.base, "cgroup.subtree_control"), "+memory +pids");
      const dir = join(found.base, "luminaguard-sandbox");
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "cgroup.subtree_control"), "+memory +pids");
      const cg = new SandboxCgroup(dir);
      cg.apply(limits);
      return cg;
    } catch (err) {
      if (err instanceof AgentError) throw err;
      throw new AgentError("E_CGROUP", `Could not set up the sandbox cgroup under ${found.base}: ${(err as Error).message}.`);
    }
  }

  /** Change the limits (configure may be sent again). */
  apply(limits: LimitValues): void {
    this.limits = limits;
    writeFileSync(join(this.dir, "memory.max"), String(limits.memoryBytes));
    writeFileSync(join(this.dir, "pids.max"), String(limits.pids + this.extraPids));
    // No swap: the memory limit must mean RAM (as on the host backends).
    if (existsSync(join(this.dir, "memory.swap.max"))) writeFileSync(join(this.dir, "memory.swap.max"), "0");
  }

  /** A fresh child cgroup for one exec. */
  forExec(): ExecCgroup {
    const dir = join(this.dir, `exec-${++this.seq}`);
    mkdirSync(dir);
    if (this.delegatedTo) chownSync(join(dir, "cgroup.procs"), this.delegatedTo.uid, this.delegatedTo.gid);
    return { dir, procsFile: join(dir, "cgroup.procs"), sandboxPidsMaxBefore: eventCount(join(this.dir, "pids.events"), "max") };
  }

  /**
   * A child cgroup for the sandbox's spawner, whose `pids` processes are added to
   * pids.max, and delegation to the sandbox user: it may write the cgroup.procs of
   * this cgroup and of each exec's (cgroup v2 moves need both), which the spawner's
   * children do to enter their exec's cgroup. Only cgroup.procs: the limits stay root's.
   * Commands cannot reach the cgroup file system (not in their view); the spawner
   * holds a descriptor of this folder and is not dumpable.
   */
  forSpawner(owner: { uid: number; gid: number }, pids: number): ExecCgroup {
    const dir = join(this.dir, "spawner");
    try {
      mkdirSync(dir);
    } catch (err) {
      if (errnoOf(err) !== "EEXIST") throw err;
      this.kill({ dir, procsFile: "", sandboxPidsMaxBefore: 0 });
    }
    chownSync(join(this.dir, "cgroup.procs"), owner.uid, owner.gid);
    this.delegatedTo = owner;
    this.extraPids = pids;
    if (this.limits) this.apply(this.limits);
    return { dir, procsFile: join(dir, "cgroup.procs"), sandboxPidsMaxBefore: 0 };
  }

  /** The processes in an exec's cgroup (guest pids), to signal a whole tree. */
  pids(cg: ExecCgroup): number[] {
    return readText(join(cg.dir, "cgroup.procs")).split("\n").filter(Boolean).map(Number);
  }

  /** Which limits the exec hit, read before the cgroup is removed. */
  events(cg: ExecCgroup): { oom: boolean; pidsLimit: boolean } {
    const oom = eventCount(join(cg.dir, "memory.events"), "oom_kill") > 0;
    const pidsLimit = eventCount(join(cg.dir, "pids.events"), "max") > 0 || eventCount(join(this.dir, "pids.events"), "max") > cg.sandboxPidsMaxBefore;
    return { oom, pidsLimit };
  }

  /** SIGKILL every process of the exec (Linux 5.14+: cgroup.kill). */
  kill(cg: ExecCgroup): void {
    try {
      writeFileSync(join(cg.dir, "cgroup.kill"), "1");
    } catch {
      // gone, or an older kernel: the caller also kills the tree by pid
    }
  }

  /** Remove an exec's cgroup once its processes are gone (retries while the kernel reaps them). */
  async remove(cg: ExecCgroup): Promise<void> {
    for (let i = 0; i < 50; i++) {
      try {
        rmdirSync(cg.dir);
        return;
      } catch (err) {
        if (errnoOf(err) === "ENOENT") return;
        if (errnoOf(err) !== "EBUSY") return;
        this.kill(cg);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** The counter `key` of a flat-keyed cgroup file ("max 3"), 0 when absent. */
function eventCount(path: string, key: string): number {
  for (const line of readText(path).split("\n")) {
    const [k, v] = line.split(" ");
    if (k === key) return Number(v) || 0;
  }
  return 0;
}
