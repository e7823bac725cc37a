/**
 * bench/load: a soak of spawn -> `exec true` -> destroy at a steady rate on each
 * backend this host supports (namespace always; gVisor and micro-VM when they
 * can run, with the reason when they cannot). Reports throughput, p50/p99 and
 * leaks (fds, processes, cgroups, scratch folders of ours, before vs after).
 *
 * The peer of a soak is the same backend at its start: each backend's
 * steady-state latency (after the first minute, or the first 20% of a shorter
 * soak) is compared with its first-window latency, measured in the same run.
 * A ratio well above 1 means the backend slows down as it runs (leak, fragmentation).
 *
 * SOAK_SECONDS (default 600: the 10-minute soak of issue 8) is the soak length IN
 * TOTAL, split evenly across the backends this host can run (a backend whose
 * warm-up fails hands its share to the ones after it), so `make bench` stays
 * ten minutes whichever backends the host has. Rates (cycles/s) are
 * LOAD_RATE_NAMESPACE (10), LOAD_RATE_GVISOR (1), LOAD_RATE_MICROVM (0.5); at most
 * LOAD_CONCURRENCY (4) cycles run at once, so a slow backend shows as a lower
 * achieved rate rather than an unbounded pile-up. LOAD_BACKENDS=namespace,gvisor
 * limits the run to those backends.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { createBackend } from "../src/sandbox/backends.js";
import { collect } from "../src/sandbox/collect.js";
import { parseConfig } from "../src/config/load.js";
import { toSandboxSpec } from "../src/config/schema.js";
import { runtimeDir } from "../src/config/paths.js";
import type { Backend, BackendName, SandboxSpec } from "../src/sandbox/types.js";
import { percentile, repoRoot } from "./stats.js";
import { foldersNamed } from "../test/helpers/leftovers.js";

const TOTAL_SOAK_MS = Number(process.env.SOAK_SECONDS ?? 600) * 1000;
const CONCURRENCY = Math.max(1, Number(process.env.LOAD_CONCURRENCY ?? 4));
const DEFAULT_RATE: Record<BackendName, number> = { namespace: 10, gvisor: 1, microvm: 0.5 };
const BACKENDS = ["namespace", "gvisor", "microvm"] as const;

/** The baseline window of a soak: its first minute, or its first 20% when it is shorter than 5 minutes. */
function baselineMs(soakMs: number): number {
  return Math.min(60_000, soakMs * 0.2);
}

interface Leaks {
  fds: number;
  processes: number;
  cgroups: string[];
  scratch: string[];
}

interface SoakResult {
  backend: BackendName;
  skipped?: string;
  /** This backend's share of the total soak, and its first-window length. */
  soakMs?: number;
  baselineMs?: number;
  rate?: number;
  cycles?: number;
  errors?: number;
  firstError?: string;
  throughput?: number;
  p50?: number;
  p99?: number;
  baseP50?: number;
  steadyP50?: number;
  steadyP99?: number;
  before?: Leaks;
  after?: Leaks;
}

function rate(name: BackendName): number {
  const v = Number(process.env[`LOAD_RATE_${name.toUpperCase()}`] ?? DEFAULT_RATE[name]);
  return v > 0 ? v : DEFAULT_RATE[name];
}

/** Folders named for one of `ids` (the id itself, or `<id>.`/`<id>-` prefixed) under `root`, to `depth` levels. */
function findNamed(root: string, ids: Set<string>, depth: number): string[] {
  return foldersNamed(root, (name) => ids.has(name) || [...ids].some((id) => name.startsWith(`${id}.`) || name.startsWith(`${id}-`)), depth);
}

/** Our descendants (any depth), plus any process whose command line names one of our sandboxes (runsc, qemu may be reparented). */
function ourProcesses(ids: Set<string>): number {
  const parent = new Map<number, number>();
  const named = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      if (ids.size > 0) {
        const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8");
        for (const id of ids) if (cmd.includes(id)) named.add(Number(entry));
      }
    } catch {
      // gone meanwhile
    }
  }
  const ours = new Set<number>(named);
  for (const pid of parent.keys()) {
    for (let p = parent.get(pid), hops = 0; p !== undefined && p > 1 && hops < 64; p = parent.get(p), hops++) {
      if (p === process.pid) {
        ours.add(pid);
        break;
      }
    }
  }
  return ours.size;
}

function leaks(ids: Set<string>): Leaks {
  return {
    fds: readdirSync("/proc/self/fd").length,
    processes: ourProcesses(ids),
    cgroups: ids.size === 0 ? [] : findNamed("/sys/fs/cgroup", ids, 7),
    scratch: ids.size === 0 ? [] : findNamed(runtimeDir(), ids, 2),
  };
}

/**
 * Why the backend cannot run here (its own message), or undefined. Also the warm-up:
 * CONCURRENCY sandboxes at once, so one-off lazy resources (helper processes, cached
 * files, libuv's threads and pipes) exist before the "before" snapshot and are not
 * counted as leaks.
 */
async function unavailable(backend: Backend, spec: SandboxSpec): Promise<string | undefined> {
  try {
    await backend.check();
    const made = await Promise.all(Array.from({ length: CONCURRENCY }, () => backend.create(spec)));
    await Promise.all(made.map(async (sb) => (await collect(sb.exec(["true"])), await sb.destroy())));
    return undefined;
  } catch (err) {
    return (err as Error).message.split("\n")[0];
  }
}

/** Why this host cannot run the backend at all (its check's own message), or undefined: decides how the soak is split. */
async function cannotRun(name: BackendName): Promise<string | undefined> {
  try {
    const backend = await createBackend(name);
    try {
      await backend.check();
    } finally {
      await backend.close?.();
    }
    return undefined;
  } catch (err) {
    return (err as Error).message.split("\n")[0];
  }
}

async function soak(name: BackendName, soakMs: number): Promise<SoakResult> {
  const spec = toSandboxSpec(parseConfig({ sandbox: { backend: name } }).sandbox);
  const backend = await createBackend(name);
  const ids = new Set<string>();
  const firstMs = baselineMs(soakMs);
  try {
    const why = await unavailable(backend, spec);
    if (why) return { backend: name, skipped: why };
    const before = leaks(ids);
    const perSecond = rate(name);
    const samples: { at: number; ms: number }[] = [];
    let errors = 0;
    let firstError: string | undefined;
    const start = performance.now();
    const inflight = new Set<Promise<void>>();
    process.stderr.write(`bench/load: ${name} for ${Math.round(soakMs / 1000)} s at ${perSecond}/s (at most ${CONCURRENCY} at once)\n`);
    for (let i = 0; ; i++) {
      const due = start + (i * 1000) / perSecond;
      if (due - start >= soakMs) break;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      while (inflight.size >= CONCURRENCY) await Promise.race(inflight);
      const t0 = performance.now();
      const cycle = (async () => {
        const sb = await backend.create(spec);
        ids.add(sb.id);
        try {
          const r = await collect(sb.exec(["true"]));
          if (r.result.exitCode !== 0) throw new Error(`true exited ${r.result.exitCode}: ${r.stderr.toString().trim()}`);
        } finally {
          await sb.destroy();
        }
        samples.push({ at: t0 - start, ms: performance.now() - t0 });
      })().catch((err: unknown) => {
        errors++;
        firstError ??= (err as Error).message.split("\n")[0];
      });
      const tracked = cycle.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
      if (samples.length > 0 && samples.length % 50 === 0) process.stderr.write(`\r  ${name}: ${samples.length} cycles   `);
    }
    await Promise.all(inflight);
    const elapsed = performance.now() - start;
    process.stderr.write(`\r  ${name}: ${samples.length} cycles, ${errors} errors\n`);
    await backend.close?.();
    // Teardown is asynchronous in places (cgroup removal after the last process exits): give it a moment.
    await new Promise((r) => setTimeout(r, 1000));
    const after = leaks(ids);
    const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
    const all = sorted(samples.map((s) => s.ms));
    const base = sorted(samples.filter((s) => s.at < firstMs).map((s) => s.ms));
    const steady = sorted(samples.filter((s) => s.at >= firstMs).map((s) => s.ms));
    return {
      backend: name,
      soakMs,
      baselineMs: firstMs,
      rate: perSecond,
      cycles: samples.length,
      errors,
      ...(firstError ? { firstError } : {}),
      throughput: samples.length / (elapsed / 1000),
      p50: percentile(all, 50),
      p99: percentile(all, 99),
      baseP50: percentile(base, 50),
      steadyP50: percentile(steady, 50),
      steadyP99: percentile(steady, 99),
      before,
      after,
    };
  } finally {
    await backend.close?.();
  }
}

function leakCell(r: SoakResult): string {
  const b = r.before!;
  const a = r.after!;
  const parts = [`fds ${b.fds}→${a.fds}`, `procs ${b.processes}→${a.processes}`, `cgroups ${b.cgroups.length}→${a.cgroups.length}`, `scratch ${b.scratch.length}→${a.scratch.length}`];
  return parts.join(", ");
}

function leaked(r: SoakResult): boolean {
  const b = r.before!;
  const a = r.after!;
  return a.fds > b.fds || a.processes > b.processes || a.cgroups.length > 0 || a.scratch.length > 0;
}

/** Soak each backend this host can run, splitting TOTAL_SOAK_MS among them; the others say why they were skipped. */
async function soakAll(): Promise<{ results: SoakResult[]; runnable: BackendName[] }> {
  const only = process.env.LOAD_BACKENDS?.split(",").map((b) => b.trim());
  const skipped = new Map<BackendName, string>();
  for (const name of BACKENDS) {
    const why = only && !only.includes(name) ? "not in LOAD_BACKENDS" : await cannotRun(name);
    if (why !== undefined) skipped.set(name, why);
  }
  const runnable = BACKENDS.filter((name) => !skipped.has(name));
  const results: SoakResult[] = [];
  let spentMs = 0;
  let left = runnable.length;
  for (const name of BACKENDS) {
    const why = skipped.get(name);
    if (why !== undefined) {
      results.push({ backend: name, skipped: why });
      continue;
    }
    // What is left of the total, evenly over the backends still to run: a failed warm-up's share moves on.
    const r = await soak(name, (TOTAL_SOAK_MS - spentMs) / left--);
    spentMs += r.soakMs ?? 0;
    results.push(r);
  }
  return { results, runnable };
}

async function main(): Promise<void> {
  const { results, runnable } = await soakAll();
  const f = (x: number | undefined, d = 1): string => (x === undefined || Number.isNaN(x) ? "n/a" : x.toFixed(d));
  const head = "| backend | soak s | target rate /s | cycles | errors | throughput /s | p50 ms | p99 ms | first-window p50 ms (peer) | steady p50 ms | steady p99 ms | steady/first p50 | leaks (before→after) |";
  const line = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|";
  const rows = results.map((r) =>
    r.skipped !== undefined
      ? `| ${r.backend} | skipped: ${r.skipped.replace(/\|/g, "/")} | | | | | | | | | | | |`
      : `| ${r.backend} | ${f(r.soakMs! / 1000, 0)} | ${r.rate} | ${r.cycles} | ${r.errors} | ${f(r.throughput, 2)} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.baseP50)} (first ${f(r.baselineMs! / 1000, 0)} s) | ${f(r.steadyP50)} | ${f(r.steadyP99)} | ${f(r.steadyP50! / r.baseP50!, 2)} | ${leakCell(r)}${leaked(r) ? " **LEAK**" : ""} |`,
  );
  const ran = results.filter((r) => r.skipped === undefined);
  const targets = [
    ...ran.map((r) => ({ target: `${r.backend}: no errors, no leak`, value: `${r.errors} errors${r.firstError ? ` (first: ${r.firstError})` : ""}, ${leaked(r) ? "leak" : "no leak"}`, ok: r.errors === 0 && !leaked(r) })),
    ...ran.map((r) => ({ target: `${r.backend}: steady-state p50 <= 1.5x first-window p50`, value: `${f(r.steadyP50! / r.baseP50!, 2)}x`, ok: r.steadyP50! <= 1.5 * r.baseP50! })),
  ];
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, Node ${process.version}, ${new Date().toISOString()}`;
  const out = [
    "## bench/load",
    "",
    machine,
    "",
    `Soak of create -> exec \`true\` -> destroy at a steady target rate, at most ${CONCURRENCY} at once: ${TOTAL_SOAK_MS / 1000} s in total (SOAK_SECONDS), split across the backends this host can run (${runnable.join(", ") || "none"}: ${runnable.length > 0 ? `${Math.round(TOTAL_SOAK_MS / 1000 / runnable.length)} s each` : "nothing to soak"}; a backend whose warm-up fails hands its share to the next). The peer is each backend's own first window in this run (its first minute, or the first 20% of a shorter soak: first-window p50), against its steady state after that.`,
    "",
    head,
    line,
    ...rows,
    "",
    "| target | measured | met |",
    "|---|---|---|",
    ...targets.map((t) => `| ${t.target} | ${t.value.replace(/\|/g, "/")} | ${t.ok ? "yes" : "NO"} |`),
  ].join("\n");
  process.stdout.write(`${out}\n`);
  const dir = join(repoRoot(), "bench", "results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `load-${new Date().toISOString().replace(/[:.]/g, "-")}.json`), JSON.stringify({ machine, totalSoakMs: TOTAL_SOAK_MS, runnable, results, targets }, null, 2));
  writeFileSync(join(dir, "load-latest.md"), `${out}\n`);
}

await main();
