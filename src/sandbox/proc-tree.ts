import { readFileSync, readdirSync } from "node:fs";

/** Direct children of a process, from /proc/<pid>/task/<tid>/children (empty if gone). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(" ")) {
        if (c.trim()) out.push(Number(c));
      }
    } catch {
      // the thread or process ended while we looked
    }
  }
  return out;
}

/** Every descendant of `pid` (not `pid` itself), parents before children. */
export function descendantPids(pid: number): number[] {
  const out: number[] = [];
  const queue = childPids(pid);
  while (queue.length > 0) {
    const next = queue.shift()!;
    out.push(next);
    queue.push(...childPids(next));
  }
  return out;
}

/** process.kill that ignores "no such process" (it may have ended meanwhile). */
export function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // ESRCH: already gone
  }
}
