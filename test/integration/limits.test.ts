/**
 * Real cgroups: needs root and a writable cgroup hierarchy (CI has both; the
 * project's hosts are cgroup v1 hybrids, users' machines mostly cgroup v2).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createSandboxCgroup, detectCgroups, enterCgroupArgv, sweepStaleCgroups, type SandboxCgroup } from "../../src/policy/limits/index.js";
import type { SandboxLimits } from "../../src/sandbox/types.js";

const MiB = 1024 * 1024;
const host = await detectCgroups();
const skipReason =
  process.getuid?.() !== 0 ? "not running as root" : !host.writable ? `no writable cgroup hierarchy (${host.reason ?? "?"})` : undefined;
if (skipReason) console.warn(`[limits integration] skipping real-cgroup tests: ${skipReason}`);

const PYTHON = ["/usr/bin/python3", "/usr/local/bin/python3"].find((p) => existsSync(p)) ?? "python3";

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Start argv inside the cgroup through the enter wrapper. */
function start(procsFiles: readonly string[], argv: string[]): { child: ChildProcess; ended: Promise<Ended> } {
  const [cmd, ...args] = enterCgroupArgv(procsFiles, argv);
  const child = spawn(cmd!, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const ended = new Promise<Ended>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, ended };
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return check();
}

/** utime + stime of a process in seconds, from /proc/<pid>/stat (clock ticks of 1/100 s). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

let seq = 0;
const newId = () => `sb-test-${process.pid}-${seq++}`;

describe.skipIf(skipReason !== undefined)(`cgroup limits on this host (cgroup v${host.version})`, () => {
  const live: SandboxCgroup[] = [];
  const children: ChildProcess[] = [];

  async function make(limits: Partial<SandboxLimits> = {}): Promise<SandboxCgroup> {
    const cg = await createSandboxCgroup(newId(), { memoryBytes: 64 * MiB, pids: 64, cpus: 1, ...limits });
    live.push(cg);
    return cg;
  }

  afterEach(async () => {
    // Runs when a test failed too: nothing a test started may outlive it.
    const results = await Promise.allSettled(live.splice(0).map((cg) => cg.destroy()));
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  });

  it("starts a process launched through enterCgroupArgv inside the cgroup", async () => {
    const cg = await make();
    const { child, ended } = start(cg.procsFiles, ["sleep", "5"]);
    children.push(child);
    const pid = child.pid!;
    // Wait for the exec (comm changes from sh to sleep), then look at /proc/<pid>/cgroup.
    expect(await until(() => readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "sleep", 2000)).toBe(true);
    const lines = readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n");
    for (const path of cg.paths) {
      const h = host.hierarchies.find((x) => path.startsWith(x.mountPoint + "/"))!;
      expect(lines.some((l) => l.endsWith(`:${path.slice(h.mountPoint.length)}`))).toBe(true);
    }
    expect(await cg.pids()).toContain(pid);
    expect((await cg.usage()).pids).toBe(1);
    await cg.killAll();
    expect((await ended).signal).toBe("SIGKILL");
    expect(await cg.pids()).toEqual([]);
  });

  it("OOM-kills a process over the memory limit and leaves a second cgroup alone", async () => {
    const [hog, calm] = await Promise.all([make({ memoryBytes: 64 * MiB }), make({ memoryBytes: 64 * MiB })]);
    const before = await hog.events();
    // The calm one holds 16 MiB for a while, so it is alive while the hog is killed.
    const calmRun = start(calm.procsFiles, [PYTHON, "-c", "import time; b = bytearray(16 * 1024 * 1024); time.sleep(1.0); print('alive', len(b))"]);
    const hogRun = start(hog.procsFiles, [PYTHON, "-c", "b = bytearray(200 * 1024 * 1024); print('not reached')"]);
    children.push(calmRun.child, hogRun.child);
    const hogEnd = await hogRun.ended;
    expect(hogEnd.signal).toBe("SIGKILL");
    expect(hogEnd.stdout).toBe("");
    const after = await hog.events();
    expect(after.oomKills).toBeGreaterThan(before.oomKills);
    const usage = await hog.usage();
    expect(usage.memoryPeakBytes ?? 0).toBeLessThanOrEqual(64 * MiB);
    const calmEnd = await calmRun.ended;
    expect(calmEnd).toMatchObject({ code: 0, stdout: `alive ${16 * MiB}\n` });
    expect((await calm.events()).oomKills).toBe(0);
  });

  it("stops a fork bomb at pids.max, kills it all, and destroy leaves nothing behind", async () => {
    const cg = await make({ pids: 16 });
    const before = await cg.events();
    // Each iteration forks a sleeper; past 16 processes fork fails (and sh may give up).
    const bomb = start(cg.procsFiles, ["/bin/sh", "-c", "i=0; while [ $i -lt 64 ]; do sleep 30 & i=$((i+1)); done 2>/dev/null; wait"]);
    children.push(bomb.child);
    expect(await until(async () => (await cg.events()).pidsMaxHits > before.pidsMaxHits, 5000)).toBe(true);
    const usage = await cg.usage();
    expect(usage.pids).toBeGreaterThan(1);
    expect(usage.pids).toBeLessThanOrEqual(16);
    const pids = await cg.pids();
    expect(pids.length).toBeGreaterThan(1);
    await cg.killAll();
    expect(await cg.pids()).toEqual([]);
    for (const pid of pids) expect(existsSync(`/proc/${pid}/cgroup`) && readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(cg.id)).toBe(false);
    await cg.destroy();
    for (const path of cg.paths) expect(existsSync(path)).toBe(false);
    expect(cg.destroyed).toBe(true);
    await cg.destroy(); // idempotent
    await expect(cg.events()).rejects.toMatchObject({ code: "E_CGROUP_DESTROYED" });
    await bomb.ended;
  });

  it("killAll catches processes forking while it kills", async () => {
    const cg = await make({ pids: 64 });
    // A forking chain: every process keeps spawning children that do the same.
    const run = start(cg.procsFiles, ["/bin/sh", "-c", "f() { while :; do (f) & sleep 0.01; done; }; f"]);
    children.push(run.child);
    expect(await until(async () => (await cg.pids()).length >= 8, 5000)).toBe(true);
    await cg.killAll();
    expect(await cg.pids()).toEqual([]);
    await run.ended;
  });

  it("killAll with SIGTERM signals every process once, through the freezer", async () => {
    const cg = await make();
    const run = start(cg.procsFiles, ["/bin/sh", "-c", "sleep 30 & sleep 30 & sleep 30 & wait"]);
    children.push(run.child);
    expect(await until(async () => (await cg.pids()).length === 4, 3000)).toBe(true);
    await cg.killAll("SIGTERM");
    expect(await until(async () => (await cg.pids()).length === 0, 2000)).toBe(true);
    expect((await run.ended).signal).toBe("SIGTERM");
  });

  it("holds a busy loop to its CPU quota", async () => {
    const cg = await make({ cpus: 0.2 });
    const run = start(cg.procsFiles, ["/bin/sh", "-c", "while :; do :; done"]);
    children.push(run.child);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    const wall = (Date.now() - t0) / 1000;
    const procCpu = cpuSecondsOf(run.child.pid!);
    const usage = await cg.usage();
    await cg.killAll();
    // 0.2 cores for ~1 s is ~0.2 s; allow scheduler slack but stay far below an unthrottled 1 s.
    expect(procCpu).toBeLessThanOrEqual(0.35 * wall);
    expect(procCpu).toBeGreaterThan(0);
    if (usage.cpuUsec !== undefined) expect(usage.cpuUsec / 1e6).toBeLessThanOrEqual(0.35 * wall);
  });

  it("refuses a duplicate sandbox id and recreates its folders when someone removed them", async () => {
    const cg = await make();
    await expect(createSandboxCgroup(cg.id, { memoryBytes: 64 * MiB, pids: 16, cpus: 1 })).rejects.toMatchObject({ code: "E_CGROUP_SETUP" });
    for (const path of cg.paths) expect(existsSync(path)).toBe(true);
    await cg.destroy();
    for (const path of cg.paths) rmdirSync(dirname(path));
    const again = await make();
    for (const path of again.paths) expect(existsSync(path)).toBe(true);
  });

  it("sweeps a stale cgroup of a dead owner (killing what runs in it) and keeps live ones", async () => {
    const mine = await make();
    // A dead owner: pid 999999999 cannot exist (above PID_MAX_LIMIT).
    const stale = host.hierarchies.map((h) => join(h.base, "luminaguard", "pid-999999999-1", "sb-crashed"));
    for (const dir of stale) mkdirSync(dir, { recursive: true });
    const leftover = start(stale.map((d) => join(d, "cgroup.procs")), ["sleep", "30"]);
    children.push(leftover.child);
    expect(await until(() => readFileSync(join(stale[0]!, "cgroup.procs"), "utf8").trim() !== "", 2000)).toBe(true);
    const removed = await sweepStaleCgroups();
    for (const dir of stale) {
      expect(removed).toContain(dir);
      expect(removed).toContain(join(dir, ".."));
      expect(existsSync(dir)).toBe(false);
    }
    expect((await leftover.ended).signal).toBe("SIGKILL");
    for (const path of mine.paths) expect(existsSync(path)).toBe(true);
  });
});
