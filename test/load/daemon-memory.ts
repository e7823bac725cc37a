/**
 * The memory of a daemon process, measured from outside it: the V8 heap after
 * a full GC, which the test-only preload gc-probe.mjs collects and writes on
 * SIGUSR2, and VmRSS from /proc/<pid>/status right after that GC. The daemon's
 * /metrics exports no process or heap metrics (no prom-client default metrics),
 * and heap or RSS numbers without a GC first are mostly uncollected garbage.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { eventually } from "../helpers/procs.js";
import type { MemorySample } from "./rounds.js";

const PROBE = join(import.meta.dirname, "gc-probe.mjs");

/** The environment that loads the probe into a daemon; `file` is where it writes its samples. */
export function gcProbeEnv(file: string): Record<string, string> {
  return { NODE_OPTIONS: `--import=${pathToFileURL(PROBE).href}`, LG_TEST_GC_PROBE: file };
}

interface ProbeSample {
  seq: number;
  pid: number;
  heapUsed: number;
}

function readProbe(file: string): ProbeSample | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as ProbeSample;
  } catch {
    return undefined; // not written yet
  }
}

/** Resident set size of `pid` in bytes (VmRSS, kB in /proc). */
export function vmRss(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  if (kb === undefined) throw new Error(`no VmRSS in /proc/${pid}/status (is ${pid} a live process?)`);
  return Number(kb) * 1024;
}

/** Make the daemon `pid` collect its garbage, then read its heap (from the probe) and its RSS (from /proc). */
export async function sampleDaemon(pid: number, file: string, waitMs = 10_000): Promise<MemorySample> {
  const last = readProbe(file);
  // Without the probe's handler SIGUSR2 would end the daemon, so signal only a daemon that loaded it.
  if (last?.pid !== pid) throw new Error(`the daemon (pid ${pid}) did not load the GC probe (${file} ${last ? `is from pid ${last.pid}` : "is missing"}): start it with gcProbeEnv()`);
  process.kill(pid, "SIGUSR2");
  let sample: ProbeSample | undefined;
  const ok = await eventually(() => ((sample = readProbe(file)), (sample?.seq ?? 0) > last.seq), waitMs, 20);
  if (!ok || !sample) throw new Error(`the daemon (pid ${pid}) wrote no GC sample to ${file} within ${waitMs} ms`);
  return { heapUsed: sample.heapUsed, rss: vmRss(pid) };
}
