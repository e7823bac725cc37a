import { readFileSync, readdirSync } from "node:fs";

/**
 * Parent of every live process, from /proc/<pid>/stat. We scan instead of reading
 * /proc/<pid>/task/<tid>/children because that file needs CONFIG_PROC_CHILDREN,
 * which many kernels (this project's CI among them) are built without.
 */
function parentMap(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // ended while we looked
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const list = children.get(ppid);
    if (list) list.push(Number(name));
    else children.set(ppid, [Number(name)]);
  }
  return children;
}

/** Direct children of a process (empty if it has none or is gone). */
export function childPids(pid: number): number[] {
  return parentMap().get(pid) ?? [];
}

/** Every descendant of `pid` (not `pid` itself), parents before children. */
export function descendantPids(pid: number): number[] {
  const map = parentMap();
  const out: number[] = [];
  const queue = [...(map.get(pid) ?? [])];
  while (queue.length > 0) {
    const next = queue.shift()!;
    out.push(next);
    queue.push(...(map.get(next) ?? []));
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
