/**
 * Killing every process of a cgroup, including ones forked while we kill.
 *
 * Reading cgroup.procs and then signalling races with fork(): a child born in
 * between is missed. cgroup v2's cgroup.kill (Linux 5.14+) closes that race in
 * the kernel. Without it: one plain read-and-kill round (enough when nothing
 * forks), then rounds under the freezer (v2 cgroup.freeze or the v1 freezer
 * hierarchy) so the list cannot change while we signal it: freeze, signal
 * everyone, thaw (frozen tasks die on thaw), until the cgroup is empty.
 * Without any freezer the rounds run unfrozen: each kills everyone that
 * existed at its read, so a fork bomb bounded by pids.max runs out quickly.
 */
import { join } from "node:path";
import { errnoOf, killQuiet, readOptional, readProcs, sleep, writeControl } from "./cgroupfs.js";
import { parseFlatKeyed } from "./parse.js";

/** The directories of one sandbox cgroup, as the kill logic needs them. */
export interface CgroupView {
  version: 1 | 2;
  /** Every directory of the sandbox (v2: one; v1: one per hierarchy). */
  dirs: readonly string[];
  /** v1 freezer directory, or the v2 directory (which has cgroup.freeze). */
  freezerDir?: string | undefined;
}

/** How long the first, unfrozen SIGKILL round waits for the cgroup to empty. */
const PLAIN_ROUND_WAIT_MS = 20;
/** How long to wait for a cgroup to freeze before signalling anyway. */
const FREEZE_WAIT_MS = 50;

/** Every pid in the cgroup (v1: the union over hierarchies, in case one was left out). */
export function listPids(view: CgroupView): number[] {
  if (view.dirs.length === 1) return readProcs(view.dirs[0]!);
  return [...new Set(view.dirs.flatMap((d) => readProcs(d)))];
}

/** True when no process is left (v2 counts descendants through cgroup.events). */
export function isEmpty(view: CgroupView): boolean {
  if (view.version === 2 && view.dirs[0] !== undefined) {
    const events = readOptional(join(view.dirs[0], "cgroup.events"));
    if (events !== undefined) return parseFlatKeyed(events).get("populated") === 0;
  }
  return listPids(view).length === 0;
}

/** Poll `check` with growing short sleeps (1, 2, 4 … 20 ms) until true or `timeoutMs` passed. */
export async function pollUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  let delay = 1;
  while (true) {
    if (check()) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    await sleep(Math.min(delay, left));
    delay = Math.min(delay * 2, 20);
  }
}

/**
 * Signal every process in the cgroup. For SIGKILL, repeat until the cgroup is
 * empty or `budgetMs` passed (the caller checks what is left); other signals
 * are delivered once to every process.
 */
export async function killAllIn(view: CgroupView, signal: NodeJS.Signals, budgetMs: number): Promise<void> {
  const deadline = performance.now() + budgetMs;
  if (signal === "SIGKILL" && view.version === 2 && view.dirs[0] !== undefined && writeKill(view.dirs[0])) {
    await pollUntil(() => isEmpty(view), budgetMs);
    return;
  }
  if (signal === "SIGKILL") {
    // Usually nothing forks while we kill: one plain round empties the cgroup in
    // a few ms, cheaper than freezing (~10 ms for a dozen tasks here). Survivors
    // (a fork bomb) get the frozen rounds below.
    const pids = listPids(view);
    if (pids.length === 0) return;
    for (const pid of pids) killQuiet(pid, signal);
    if (await pollUntil(() => isEmpty(view), Math.min(PLAIN_ROUND_WAIT_MS, budgetMs))) return;
  }
  while (true) {
    if (listPids(view).length === 0) return;
    const frozen = await freeze(view);
    try {
      // Read after freezing: now the list cannot grow while we signal it.
      for (const pid of listPids(view)) killQuiet(pid, signal);
    } finally {
      if (frozen) thaw(view);
    }
    if (signal !== "SIGKILL") return;
    const left = deadline - performance.now();
    if (left <= 0) return;
    if (await pollUntil(() => isEmpty(view), Math.min(left, 50))) return;
  }
}

/** Write cgroup.kill; false when this kernel has none (before 5.14). */
function writeKill(dir: string): boolean {
  try {
    writeControl(join(dir, "cgroup.kill"), "1");
    return true;
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return false;
    throw err;
  }
}

/** Freeze the cgroup if a freezer is available; true when we froze it (perhaps not fully, after FREEZE_WAIT_MS). */
async function freeze(view: CgroupView): Promise<boolean> {
  const dir = view.freezerDir;
  if (dir === undefined) return false;
  try {
    if (view.version === 2) {
      writeControl(join(dir, "cgroup.freeze"), "1");
      await pollUntil(() => parseFlatKeyed(readOptional(join(dir, "cgroup.events")) ?? "").get("frozen") === 1, FREEZE_WAIT_MS);
    } else {
      writeControl(join(dir, "freezer.state"), "FROZEN");
      await pollUntil(() => (readOptional(join(dir, "freezer.state")) ?? "").trim() === "FROZEN", FREEZE_WAIT_MS);
    }
    return true;
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return false;
    throw err;
  }
}

function thaw(view: CgroupView): void {
  const dir = view.freezerDir;
  if (dir === undefined) return;
  try {
    writeControl(join(dir, view.version === 2 ? "cgroup.freeze" : "freezer.state"), view.version === 2 ? "0" : "THAWED");
  } catch (err) {
    if (errnoOf(err) !== "ENOENT") throw err;
  }
}
