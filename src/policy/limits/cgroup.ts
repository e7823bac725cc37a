/**
 * One sandbox's cgroup: created with its limits before the sandbox starts,
 * entered by the launcher (see enter.ts), read for usage and limit events,
 * and removed with everything in it when the sandbox is destroyed.
 */
import { mkdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import type { CgroupLimits } from "../../sandbox/types.js";
import { errnoOf, readOptional, writeControl } from "./cgroupfs.js";
import { detectCgroups, hierarchyFor, type CgroupHost } from "./detect.js";
import { CGROUP_UNAVAILABLE_HINT, LimitsError } from "./errors.js";
import { trackLive, untrackLive } from "./exit-hook.js";
import { killAllIn, listPids, pollUntil, type CgroupView } from "./kill.js";
import { parseFlatKeyed, parseSingleValue } from "./parse.js";
import { ensureOwnerDirs, forgetOwnerDirs } from "./setup.js";
import { limitValues, limitWrites, validateSandboxId, type LimitValues } from "./values.js";

/** Resource use of a sandbox cgroup right now. */
export interface CgroupUsage {
  memoryBytes: number;
  /** Highest memory use so far (v2 needs Linux 5.19+ for memory.peak). */
  memoryPeakBytes?: number;
  /** Processes and threads. */
  pids: number;
  /** CPU time used (v1 needs the cpuacct controller). */
  cpuUsec?: number;
}

/** Counters of limit hits; snapshot before an exec and compare after. */
export interface CgroupEvents {
  /** Processes the kernel's OOM killer killed because of the memory limit. */
  oomKills: number;
  /** Forks refused because of pids.max. */
  pidsMaxHits: number;
}

export interface SandboxCgroup {
  readonly id: string;
  readonly version: 1 | 2;
  /** Every directory created for this sandbox (v2: one; v1: one per hierarchy). */
  readonly paths: readonly string[];
  /**
   * The cgroup.procs files a launcher writes its own pid into before exec'ing
   * the sandbox (see enterCgroupArgv), so the sandbox starts inside with no race.
   */
  readonly procsFiles: readonly string[];
  usage(): Promise<CgroupUsage>;
  events(): Promise<CgroupEvents>;
  /** The pids inside right now. */
  pids(): Promise<number[]>;
  /** Signal every process inside, including ones forking meanwhile; for SIGKILL, until it is empty (bounded). */
  killAll(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Call before starting a command: pid charges the kernel has not released yet
   * although no task holds them are allowed on top of the pids limit, so the limit
   * keeps meaning live processes (see the implementation for the kernel behaviour).
   */
  allowUnreleasedPids(): void;
  /** Kill everything and remove the cgroup. Idempotent; throws E_CGROUP_CLEANUP naming a leftover. */
  destroy(): Promise<void>;
  readonly destroyed: boolean;
}

/** How long killAll keeps killing before it gives up (stuck D-state processes). */
const KILL_BUDGET_MS = 300;
/** How long destroy retries rmdir on EBUSY after the kill. */
const RMDIR_BUDGET_MS = 200;

/** Create the cgroup(s) for sandbox `id` with `limits` applied. */
export async function createSandboxCgroup(id: string, limits: CgroupLimits): Promise<SandboxCgroup> {
  validateSandboxId(id);
  const values = limitValues(limits);
  const host = await detectCgroups();
  if (!host.writable) {
    throw new LimitsError("E_CGROUP_UNAVAILABLE", `No writable cgroup hierarchy for sandbox limits (${host.reason ?? "unknown reason"}). ${CGROUP_UNAVAILABLE_HINT}`, {
      details: { reason: host.reason },
    });
  }
  try {
    return createIn(host, await ensureOwnerDirs(host), id, values);
  } catch (err) {
    // Someone removed our folders under us: set them up again once.
    if (!(err instanceof ParentMissing)) throw err;
    forgetOwnerDirs(host);
    try {
      return createIn(host, await ensureOwnerDirs(host), id, values);
    } catch (again) {
      if (!(again instanceof ParentMissing)) throw again;
      throw new LimitsError("E_CGROUP_SETUP", `Could not create cgroup ${again.message}: its parent folder keeps disappearing (is another tool removing cgroups?).`, { cause: again });
    }
  }
}

class ParentMissing extends Error {}

function createIn(host: CgroupHost, ownerDirs: string[], id: string, values: LimitValues): SandboxCgroup {
  const dirs = ownerDirs.map((d) => join(d, id));
  const made: string[] = [];
  try {
    for (const dir of dirs) {
      try {
        mkdirSync(dir);
      } catch (err) {
        if (errnoOf(err) === "ENOENT") throw new ParentMissing(dir);
        const why = errnoOf(err) === "EEXIST" ? "it already exists (sandbox ids must be unique)" : (errnoOf(err) ?? String(err));
        throw new LimitsError("E_CGROUP_SETUP", `Could not create cgroup ${dir}: ${why}.`, { cause: err, details: { path: dir } });
      }
      made.push(dir);
    }
    for (const chain of limitWrites(host.version, values)) {
      const h = hierarchyFor(host, chain[0]!.controller)!;
      const dir = dirs[host.hierarchies.indexOf(h)]!;
      for (const w of chain) {
        const path = join(dir, w.file);
        try {
          writeControl(path, w.value);
        } catch (err) {
          if (w.optional) continue;
          const hint = w.controller === "cpu" && errnoOf(err) === "EINVAL" ? " (a CPU quota on a parent cgroup may be smaller than this one)" : "";
          throw new LimitsError("E_CGROUP_SETUP", `Could not set ${path} to ${w.value}: ${errnoOf(err) ?? String(err)}${hint}.`, { cause: err, details: { path, value: w.value } });
        }
      }
    }
  } catch (err) {
    for (const d of made) {
      try {
        tryRmdir(d);
      } catch {
        // keep the original error; the sweep removes what is left
      }
    }
    throw err;
  }
  return new Cgroup(host, id, dirs, values.pidsMax);
}

class Cgroup implements SandboxCgroup {
  readonly version: 1 | 2;
  readonly procsFiles: readonly string[];
  private readonly view: CgroupView;
  private destroying: Promise<void> | undefined;
  private done = false;

  /** What pids.max holds now: the limit plus charges allowed by allowUnreleasedPids. */
  private pidsMaxNow: number;

  constructor(
    private readonly host: CgroupHost,
    readonly id: string,
    readonly paths: readonly string[],
    private readonly pidsLimit: number,
  ) {
    this.pidsMaxNow = pidsLimit;
    this.version = host.version;
    this.procsFiles = paths.map((d) => join(d, "cgroup.procs"));
    this.view = { version: host.version, dirs: [...paths], freezerDir: host.version === 2 ? paths[0] : this.dirFor("freezer") };
    trackLive(this, [...paths]);
  }

  get destroyed(): boolean {
    return this.done;
  }

  private dirFor(controller: string): string | undefined {
    const h = hierarchyFor(this.host, controller);
    return h ? this.paths[this.host.hierarchies.indexOf(h)] : undefined;
  }

  /** Read a stat file of `controller`; undefined when the file is absent. */
  private stat(controller: string, file: string): string | undefined {
    if (this.done) throw this.gone();
    const dir = this.dirFor(controller);
    return dir === undefined ? undefined : readOptional(join(dir, file));
  }

  private gone(): LimitsError {
    return new LimitsError("E_CGROUP_DESTROYED", `The cgroup of sandbox ${this.id} was destroyed.`, { details: { paths: this.paths } });
  }

  /** A stat file that must exist; its absence means the cgroup vanished. */
  private required(controller: string, file: string): string {
    const text = this.stat(controller, file);
    if (text === undefined) throw this.gone();
    return text;
  }

  async usage(): Promise<CgroupUsage> {
    if (this.version === 2) {
      const cpu = this.stat("cpu", "cpu.stat");
      const usec = cpu === undefined ? undefined : parseFlatKeyed(cpu).get("usage_usec");
      return usageOf(this.required("memory", "memory.current"), this.stat("memory", "memory.peak"), this.required("pids", "pids.current"), usec);
    }
    const cpuNs = this.stat("cpuacct", "cpuacct.usage");
    const usec = cpuNs === undefined ? undefined : Math.round(parseSingleValue(cpuNs) / 1000);
    return usageOf(this.required("memory", "memory.usage_in_bytes"), this.stat("memory", "memory.max_usage_in_bytes"), this.required("pids", "pids.current"), usec);
  }

  async events(): Promise<CgroupEvents> {
    const mem = this.required("memory", this.version === 2 ? "memory.events" : "memory.oom_control");
    const pids = this.required("pids", "pids.events");
    // v1 memory.oom_control has oom_kill since Linux 4.13; older kernels report 0.
    return { oomKills: parseFlatKeyed(mem).get("oom_kill") ?? 0, pidsMaxHits: parseFlatKeyed(pids).get("max") ?? 0 };
  }

  /**
   * Some kernels (6.18 with the cgroup v1 pids controller, seen on this project's CI
   * machines) uncharge a finished `bwrap --unshare-pid` run's pid only ~2 s after it was
   * reaped, in a batch, one charge per run. A sandbox running commands back to back then
   * counts dead pid namespaces against pids.max and its forks fail (E_PIDS_LIMIT) with a
   * handful of live processes. Before each command, charges without a task (pids.current
   * minus the tasks listed) go on top of the limit until the kernel releases them; the
   * limit on live processes stays what the spec says. Zombies of a running command are
   * counted by the kernel and listed nowhere, but this runs only as a command starts,
   * when the sandbox's earlier commands' trees are gone.
   */
  allowUnreleasedPids(): void {
    if (this.done) return;
    const dir = this.dirFor("pids");
    if (dir === undefined) return;
    const current = readOptional(join(dir, "pids.current"));
    const tasks = readOptional(join(dir, this.version === 2 ? "cgroup.threads" : "tasks"));
    if (current === undefined || tasks === undefined) return;
    let listed = 0;
    for (let i = tasks.indexOf("\n"); i >= 0; i = tasks.indexOf("\n", i + 1)) listed++;
    const unreleased = Math.max(0, parseSingleValue(current) - listed);
    const want = this.pidsLimit + unreleased;
    if (want === this.pidsMaxNow) return;
    try {
      writeControl(join(dir, "pids.max"), String(want));
      this.pidsMaxNow = want;
    } catch {
      // destroyed meanwhile; the command's launch reports it
    }
  }

  async pids(): Promise<number[]> {
    return this.done ? [] : listPids(this.view);
  }

  async killAll(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.done) return;
    await killAllIn(this.view, signal, KILL_BUDGET_MS);
  }

  destroy(): Promise<void> {
    this.destroying ??= this.teardown().catch((err: unknown) => {
      // Let a later destroy() try again.
      this.destroying = undefined;
      throw err;
    });
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    // Usual case: the sandbox's processes are gone already, and rmdir is all it takes.
    let left = this.paths.filter((dir) => !tryRmdir(dir));
    if (left.length > 0) {
      const view = { ...this.view, dirs: left };
      await killAllIn(view, "SIGKILL", KILL_BUDGET_MS);
      await pollUntil(() => (left = left.filter((dir) => !tryRmdir(dir))).length === 0, RMDIR_BUDGET_MS);
    }
    if (left.length > 0) {
      const pids = listPids({ ...this.view, dirs: left });
      throw new LimitsError(
        "E_CGROUP_CLEANUP",
        `Could not remove cgroup ${left[0]}: ${pids.length > 0 ? `processes ${pids.join(", ")} survived SIGKILL (stuck in the kernel, e.g. on a hung NFS mount)` : "it stays busy"}. ` +
          "destroy() can be retried, and sweepStaleCgroups() removes it after this process exits.",
        { details: { paths: left, pids } },
      );
    }
    this.done = true;
    untrackLive(this);
  }
}

/** rmdir that treats "already gone" as success and EBUSY (processes not yet gone) as "not yet". */
function tryRmdir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return true;
    if (errnoOf(err) === "EBUSY") return false;
    throw new LimitsError("E_CGROUP_CLEANUP", `Could not remove cgroup ${dir}: ${errnoOf(err) ?? String(err)}.`, { cause: err, details: { path: dir } });
  }
}

function usageOf(cur: string, peak: string | undefined, pids: string, cpuUsec: number | undefined): CgroupUsage {
  const out: CgroupUsage = { memoryBytes: parseSingleValue(cur), pids: parseSingleValue(pids) };
  if (peak !== undefined) out.memoryPeakBytes = parseSingleValue(peak);
  if (cpuUsec !== undefined && Number.isFinite(cpuUsec)) out.cpuUsec = cpuUsec;
  return out;
}
