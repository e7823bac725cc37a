/**
 * bench/vm: the micro-VM backend against its anchors, in one run on one machine.
 *
 * - raw QEMU: the same kernel + initrd booted with plain QEMU (no jail, no agent)
 *   until the guest's init prints its first line: the floor for any cold boot;
 * - ours, cold: a sandbox booted from nothing until `true` has run in it;
 * - ours, snapshot pool: lease from a warm SandboxPool of clones, then `exec true`;
 * - gVisor (runsc): sandbox create until `true` has run in it;
 * - memory: PSS of 20 idle clones of a 256 MiB guest.
 *
 * Run with `make bench`, or alone after `make build`:
 *   tsc -p tsconfig.bench.json && node .cache/bench-build/bench/vm.js
 * RUNS=10 for a quicker, noisier run.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { MicrovmBackend } from "../src/sandbox/microvm/backend.js";
import { bootImage } from "../src/sandbox/microvm/image.js";
import { MicrovmSandbox } from "../src/sandbox/microvm/sandbox.js";
import { GvisorBackend } from "../src/sandbox/gvisor/backend.js";
import { SandboxPool } from "../src/sandbox/pool.js";
import { collect } from "../src/sandbox/collect.js";
import { parseConfig } from "../src/config/load.js";
import { toSandboxSpec } from "../src/config/schema.js";
import type { Backend, Sandbox, SandboxSpec } from "../src/sandbox/types.js";
import { detectAccel, hostTscKhz } from "../src/sandbox/microvm/vm-process.js";
import { tcgKernelParams } from "../src/sandbox/microvm/qemu-args.js";
import { measure, repoRoot, summarize, table, type Summary } from "./stats.js";

const root = repoRoot();
const RUNS = Number(process.env.RUNS ?? 30);
const COLD_RUNS = Math.max(3, Math.round(RUNS / 6));
const CLONES = 20;
const MIB = 1024 * 1024;

/** A 256 MiB guest: 160 MiB for the sandbox's commands plus the backend's 96 MiB for kernel and agent. */
const spec: SandboxSpec = toSandboxSpec(parseConfig({ sandbox: { backend: "microvm", limits: { memory: "160M", pids: 64 } } }).sandbox);

async function runTrue(sb: Sandbox): Promise<void> {
  const r = await collect(sb.exec(["true"]));
  if (r.result.exitCode !== 0) throw new Error(`true exited ${r.result.exitCode}: ${r.stderr.toString()}`);
}

/** Create, run `true`, destroy: the whole life of a one-shot sandbox. */
async function spawnToFirstExec(backend: Backend, s: SandboxSpec): Promise<void> {
  const sb = await backend.create(s);
  try {
    await runTrue(sb);
  } finally {
    await sb.destroy();
  }
}

/** Plain QEMU, same kernel and initrd, until the guest's init prints (no jail, no agent, no rootfs work). */
async function rawBoot(): Promise<void> {
  const image = await bootImage({ build: false });
  const accel = await detectAccel();
  const cmdline = [image.cmdline, ...(accel === "tcg" ? tcgKernelParams(hostTscKhz()) : [])].join(" ");
  const argv = ["-M", "microvm,x-option-roms=off,pit=on,pic=on,rtc=on,isa-serial=on", "-accel", accel, "-m", "256M", "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-kernel", image.kernel, "-initrd", image.initrd, "-append", cmdline, "-no-reboot"];
  await new Promise<void>((resolve, reject) => {
    const child = spawn("qemu-system-x86_64", argv, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`raw boot: no init output within 60 s: ${out.slice(-500)}`));
    }, 60_000);
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      // The initramfs /init (images/guest/init) prints "lg-initramfs [uptime]: started" first.
      if (out.includes("lg-initramfs")) {
        clearTimeout(timer);
        child.kill("SIGKILL");
        resolve();
      }
    });
    child.on("error", reject);
  });
}

/** Proportional set size of a process in bytes (its share of pages it shares with others). */
function pssBytes(pid: number): number {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kb = /^Pss:\s+(\d+) kB/m.exec(text)?.[1];
  return Number(kb ?? 0) * 1024;
}

async function main(): Promise<void> {
  const results: Summary[] = [];
  const accel = await detectAccel();
  process.stderr.write(`bench/vm: accel ${accel}, ${RUNS} pool leases, ${COLD_RUNS} cold boots\n`);
  await bootImage({ build: false });

  // 1. The anchor: raw QEMU boot of the same kernel to the first line of userspace.
  results.push(await measure("raw QEMU boot to userspace (same kernel, anchor)", COLD_RUNS, rawBoot, 1));

  // 2. Ours, cold: no template; boot, agent, reseed, confinement, `true`.
  const cold = new MicrovmBackend({ snapshots: false });
  results.push(await measure("luminaguard microvm cold boot to first exec result", COLD_RUNS, () => spawnToFirstExec(cold, spec), 0));
  await cold.close();

  // 3. Ours, snapshot pool: a lease from a pool of restored, reseeded, warmed clones, then `true`.
  const backend = new MicrovmBackend({ prestarted: 2 });
  const MIN = 3;
  const pool = new SandboxPool({ backend, spec, min: MIN, max: 6, maxQueue: 8 });
  await pool.start();
  const samples: number[] = [];
  // The lease's second command: the refill the lease started is running by then (the
  // ForegroundGate holds a refill back only while a command is young), so this is the
  // cost of a command that competes with a pool refill.
  const second: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Measure the warm path: wait until the pool has refilled and nothing is being made or
    // torn down (under TCG a refill is seconds of CPU that would slow the guest measured here;
    // its cost is the create time, reported below).
    for (let s = pool.stats(); !(s.idle >= MIN && s.active === 0); s = pool.stats()) await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    const lease = await pool.lease();
    await runTrue(lease.sandbox);
    samples.push(performance.now() - t0);
    const t1 = performance.now();
    await runTrue(lease.sandbox);
    second.push(performance.now() - t1);
    void lease.release();
    process.stderr.write(`\r  snapshot lease + exec: ${i + 1}/${RUNS}   `);
  }
  process.stderr.write("\n");
  await pool.close();
  results.push(summarize("luminaguard microvm snapshot-pool lease to first exec result", samples));
  results.push(summarize("  (the same lease's second exec, while the pool refills)", second));
  const stats = backend.stats();
  results.push(summarize("  (clone restore: migrate-incoming + cont)", [stats.restoreMs.p50]));
  results.push(summarize("  (create from template: restore, reseed, configure, warm)", [stats.createMs.p50]));

  // 4. gVisor: create to first exec result.
  const gvisorSpec: SandboxSpec = { ...spec, backend: "gvisor" };
  const gvisor = new GvisorBackend();
  results.push(await measure("runsc (gVisor) spawn to first exec result", COLD_RUNS, () => spawnToFirstExec(gvisor, gvisorSpec), 1));
  await gvisor.close?.();

  // 5. Memory: 20 idle clones of a 256 MiB guest.
  const clones: Sandbox[] = [];
  let pss = 0;
  try {
    for (let i = 0; i < CLONES; i++) {
      clones.push(await backend.create(spec));
      process.stderr.write(`\r  idle clones: ${i + 1}/${CLONES}   `);
    }
    process.stderr.write("\n");
    await new Promise((r) => setTimeout(r, 2000)); // let the guests go idle
    for (const sb of clones) pss += pssBytes((sb as MicrovmSandbox).vm.pid);
  } finally {
    await Promise.allSettled(clones.map((s) => s.destroy()));
    await backend.close();
  }

  const [raw, coldBoot, lease] = results as [Summary, Summary, Summary];
  const gv = results.find((r) => r.name.startsWith("runsc"))!;
  const guestMiB = Math.ceil(spec.limits.memoryBytes / MIB) + 96;
  const targets = [
    { target: "snapshot lease to first exec result p50 < 50 ms", value: `${lease.p50.toFixed(1)} ms`, ok: lease.p50 < 50 },
    { target: "snapshot lease to first exec result p95 < 100 ms", value: `${lease.p95.toFixed(1)} ms`, ok: lease.p95 < 100 },
    { target: "snapshot lease at least 20x faster than our cold boot (p50)", value: `${(coldBoot.p50 / lease.p50).toFixed(1)}x`, ok: coldBoot.p50 >= 20 * lease.p50 },
    { target: `${CLONES} idle clones of a ${guestMiB} MiB guest < 2 GiB PSS`, value: `${(pss / MIB).toFixed(0)} MiB (${(pss / MIB / CLONES).toFixed(1)} MiB each)`, ok: pss < 2048 * MIB },
  ];
  const context = [
    `accel: ${accel}; cold boot is ${(coldBoot.p50 / raw.p50).toFixed(1)}x the raw QEMU boot; runsc spawn p50 ${gv.p50.toFixed(0)} ms`,
    `templates: ${stats.templates.map((t) => `${t.key} booted in ${t.bootMs.toFixed(0)} ms, saved in ${t.saveMs.toFixed(0)} ms, served ${t.served}`).join("; ")}`,
  ];
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, Node ${process.version}, ${new Date().toISOString()}`;
  const out = [`## bench/vm`, "", machine, "", table(results), "", ...context.map((c) => `- ${c}`), "", "| target | measured | met |", "|---|---|---|", ...targets.map((t) => `| ${t.target} | ${t.value} | ${t.ok ? "yes" : "NO"} |`)].join("\n");
  process.stdout.write(`${out}\n`);
  const dir = join(root, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `vm-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({ machine, accel, results, stats, pssBytes: pss, targets }, null, 2));
  writeFileSync(join(dir, "vm-latest.md"), `${out}\n`);
  process.stderr.write(`wrote ${file}\n`);
}

await main();
