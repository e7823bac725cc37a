/**
 * bench/spawn: spawn -> `exec true` -> destroy, for LuminaGuard's namespace
 * backend, a warm-pool lease, raw bwrap with the same flags, and the peer srt
 * (@anthropic-ai/sandbox-runtime), all in the same run on the same machine.
 * Prints a table, checks the targets, writes JSON to bench/results/.
 *
 * Run with `make bench` (it builds dist/ and installs the peer first).
 * RUNS=50 make bench for a quicker, noisier run.
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync, openSync, closeSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { NamespaceBackend } from "../src/sandbox/namespace/backend.js";
import { NamespaceHost } from "../src/sandbox/namespace/host.js";
import { bwrapArgs } from "../src/sandbox/namespace/bwrap-args.js";
import { SandboxPool } from "../src/sandbox/pool.js";
import { collect } from "../src/sandbox/collect.js";
import { parseConfig } from "../src/config/load.js";
import { toSandboxSpec } from "../src/config/schema.js";
import { measure, repoRoot, summarize, table, type Summary } from "./stats.js";

const root = repoRoot();
const here = join(root, "bench");
const RUNS = Number(process.env.RUNS ?? 200);

function run(cmd: string, args: string[], fds: number[] = []): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe", ...fds], env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(code) : reject(new Error(`${cmd} exited ${code}: ${err.trim()}`))));
  });
}

async function main(): Promise<void> {
  const spec = toSandboxSpec(parseConfig({}).sandbox);
  const backend = new NamespaceBackend();
  await backend.check();
  const results: Summary[] = [];
  process.stderr.write(`bench/spawn: ${RUNS} runs per case\n`);

  // 1. Raw bwrap with the same isolation flags, seccomp program and user drop, no cgroup.
  const host = new NamespaceHost();
  const scratch = mkdtempSync(join(tmpdir(), "lg-bench-"));
  mkdirSync(join(scratch, "ws"));
  mkdirSync(join(scratch, "tmp"));
  const program = host.seccompProgram(spec.seccomp.level, spec.seccomp.mode);
  const args = bwrapArgs({ id: "bench", uid: process.getuid!(), gid: process.getgid!(), view: host.view, passwdFile: host.identity().passwdFile, groupFile: host.identity().groupFile, workspaceDir: join(scratch, "ws"), tmpDir: join(scratch, "tmp"), unshareNet: true, seccompFd: 3, env: {}, cwd: "/workspace", argv: ["true"] });
  results.push(
    await measure("raw bwrap (same flags), spawn+true", RUNS, async () => {
      const fd = openSync(program, "r");
      try {
        await run(host.bwrapPath, args, [fd]);
      } finally {
        closeSync(fd);
      }
    }),
  );
  rmSync(scratch, { recursive: true, force: true });

  // 2. Library: create -> exec true -> destroy (cgroup, scratch folders, user drop, seccomp).
  results.push(
    await measure("luminaguard namespace: create+exec true+destroy", RUNS, async () => {
      const sb = await backend.create(spec);
      try {
        const r = await collect(sb.exec(["true"]));
        if (r.result.exitCode !== 0) throw new Error(`true exited ${r.result.exitCode}`);
      } finally {
        await sb.destroy();
      }
    }),
  );

  // 3. Lease from a warm pool: the time lease() takes when a sandbox is idle.
  const pool = new SandboxPool({ backend, spec, min: 4, max: 8, maxQueue: 8 });
  await pool.start();
  const leaseSamples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    while (pool.stats().idle === 0) await new Promise((r) => setTimeout(r, 2));
    const t0 = performance.now();
    const lease = await pool.lease();
    leaseSamples.push(performance.now() - t0);
    void lease.release();
  }
  await pool.close();
  results.push(summarize("luminaguard warm-pool lease()", leaseSamples));

  // 4. End to end from a shell: our CLI versus the peer's CLI.
  const cli = join(root, "bin", "luminaguard");
  const srt = join(here, "node_modules", ".bin", "srt");
  const cliRuns = Math.max(20, Math.round(RUNS / 4));
  results.push(await measure("CLI: luminaguard exec -- true", cliRuns, () => run(cli, ["exec", "--", "true"]).then(() => undefined), 2));
  results.push(await measure("peer CLI: srt true", cliRuns, () => run(srt, ["true"]).then(() => undefined), 2));

  const [raw, lib, lease, ourCli, peer] = results as [Summary, Summary, Summary, Summary, Summary];
  const targets = [
    { target: "library spawn+exec+destroy p50 <= 2x raw bwrap p50", value: `${(lib.p50 / raw.p50).toFixed(2)}x`, ok: lib.p50 <= 2 * raw.p50 },
    { target: "warm-pool lease p50 < 1 ms", value: `${lease.p50.toFixed(3)} ms`, ok: lease.p50 < 1 },
    { target: "CLI exec -- true at least 2x faster than srt true (p50)", value: `${(peer.p50 / ourCli.p50).toFixed(2)}x faster`, ok: ourCli.p50 * 2 <= peer.p50 },
  ];
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, Node ${process.version}, ${new Date().toISOString()}`;
  const out = [`## bench/spawn`, "", machine, "", table(results), "", "| target | measured | met |", "|---|---|---|", ...targets.map((t) => `| ${t.target} | ${t.value} | ${t.ok ? "yes" : "NO"} |`)].join("\n");
  process.stdout.write(`${out}\n`);
  mkdirSync(join(here, "results"), { recursive: true });
  const file = join(here, "results", `spawn-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({ machine, results, targets }, null, 2));
  writeFileSync(join(here, "results", "spawn-latest.md"), `${out}\n`);
  process.stderr.write(`wrote ${file}\n`);
}

await main();
