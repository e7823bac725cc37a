/**
 * bench/security: runs every escape attempt (test/security/attempts.ts, the same
 * data the vitest escape suite asserts) against every backend this host can run,
 * and writes docs/SECURITY.md: the threat model and the attempt x backend table.
 * A backend that cannot run here is a column that says why.
 *
 * Run with `make bench`, or alone as root after `make build`:
 *   tsc -p tsconfig.bench.json && node .cache/bench-build/bench/security.js
 * Exits 1 (after writing the file) when any attempt escaped.
 */
import { writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { join } from "node:path";
import { NamespaceBackend } from "../src/sandbox/namespace/backend.js";
import { GvisorBackend } from "../src/sandbox/gvisor/backend.js";
import { MicrovmBackend } from "../src/sandbox/microvm/backend.js";
import { detectAccel } from "../src/sandbox/microvm/vm-process.js";
import { parseConfig } from "../src/config/load.js";
import { toSandboxSpec } from "../src/config/schema.js";
import type { Backend, Sandbox, SandboxSpec } from "../src/sandbox/types.js";
import { ESCAPE_ATTEMPTS, startBait, type Judge } from "../test/security/attempts.js";
import { gvisorSkipReason, microvmSkipReason, namespaceSkipReason } from "../test/helpers/capabilities.js";
import { securityDoc, type Cell, type Column } from "./security-doc.js";
import { repoRoot } from "./stats.js";

interface Target {
  name: string;
  skip: () => string | undefined;
  make: () => Backend;
  spec: SandboxSpec;
}

const limits = { memory: "256M", pids: 64 };
/** The same specs as the integration tests that run the escape suite. */
const TARGETS: Target[] = [
  { name: "namespace", skip: namespaceSkipReason, make: () => new NamespaceBackend(), spec: toSandboxSpec(parseConfig({ sandbox: { limits } }).sandbox) },
  { name: "gvisor", skip: gvisorSkipReason, make: () => new GvisorBackend(), spec: toSandboxSpec(parseConfig({ sandbox: { backend: "gvisor", limits } }).sandbox) },
  // One template, one prestarted clone: under TCG the template boot is the slow part (~10 s+).
  { name: "microvm", skip: microvmSkipReason, make: () => new MicrovmBackend({ prestarted: 1 }), spec: toSandboxSpec(parseConfig({ sandbox: { backend: "microvm", limits: { memory: "160M", pids: 64 } } }).sandbox) },
];

/** Collects the checks of one attempt: the first failed one decides the cell. */
class RecordingJudge implements Judge {
  escaped: string[] = [];
  insane: string[] = [];
  blocked(ok: boolean, what: string): void {
    if (!ok) this.escaped.push(what);
  }
  sane(ok: boolean, what: string): void {
    if (!ok) this.insane.push(what);
  }
}

const oneLine = (s: string): string => s.replace(/\s+/g, " ").trim().slice(0, 160);

/** Run every attempt in one sandbox of `target`; a column of cells. */
async function runColumn(target: Target): Promise<Column> {
  const reason = target.skip();
  if (reason) return { backend: target.name, unavailable: reason, cells: new Map() };
  const backend = target.make();
  const cells = new Map<string, Cell>();
  let sb: Sandbox | undefined;
  const started = Date.now();
  try {
    sb = await backend.create(target.spec);
  } catch (err) {
    await backend.close?.().catch(() => undefined);
    return { backend: target.name, unavailable: `could not create a sandbox: ${oneLine((err as Error).message)}`, cells };
  }
  const bait = await startBait();
  try {
    for (const attempt of ESCAPE_ATTEMPTS) {
      const judge = new RecordingJudge();
      try {
        await attempt.run(sb, bait, judge);
        if (judge.escaped.length > 0) cells.set(attempt.id, { result: "ESCAPED", detail: oneLine(judge.escaped.join("; ")) });
        else if (judge.insane.length > 0) cells.set(attempt.id, { result: "inconclusive", detail: oneLine(judge.insane.join("; ")) });
        else cells.set(attempt.id, { result: "blocked" });
      } catch (err) {
        cells.set(attempt.id, { result: "error", detail: oneLine(`${(err as { code?: string }).code ?? ""} ${(err as Error).message}`) });
      }
      const cell = cells.get(attempt.id)!;
      process.stderr.write(`  ${target.name} ${attempt.id}: ${cell.result}${cell.detail ? ` (${cell.detail})` : ""}\n`);
    }
  } finally {
    await bait.close();
    await sb.destroy().catch(() => undefined);
    await backend.close?.().catch(() => undefined);
  }
  return { backend: target.name, cells, seconds: (Date.now() - started) / 1000 };
}

async function main(): Promise<void> {
  const columns: Column[] = [];
  for (const target of TARGETS) {
    process.stderr.write(`bench/security: ${target.name}\n`);
    columns.push(await runColumn(target));
  }
  const accel = microvmSkipReason() ? undefined : await detectAccel();
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}, ${process.arch}, Node ${process.version}${accel ? `, micro-VM accelerator ${accel.toUpperCase()}` : ""}`;
  const doc = securityDoc({ attempts: ESCAPE_ATTEMPTS, columns, machine, date: new Date().toISOString() });
  writeFileSync(join(repoRoot(), "docs", "SECURITY.md"), doc);
  const escaped = columns.flatMap((c) => [...c.cells.entries()].filter(([, cell]) => cell.result === "ESCAPED").map(([id]) => `${c.backend}/${id}`));
  process.stderr.write(`wrote docs/SECURITY.md${escaped.length ? `; ESCAPED: ${escaped.join(", ")}` : ""}\n`);
  if (escaped.length > 0) process.exitCode = 1;
}

await main();
