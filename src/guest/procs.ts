/**
 * The guest's processes, from /proc: the list the host asks for (it cannot see
 * inside the VM) and the descendants of a command, to signal a whole tree.
 * Scans /proc/<pid>/stat for parents because /proc/<pid>/task/<tid>/children
 * needs CONFIG_PROC_CHILDREN, which not every kernel has.
 */
import { readFileSync, readdirSync } from "node:fs";

function numericEntries(): string[] {
  return readdirSync("/proc").filter((n) => n.charCodeAt(0) >= 48 && n.charCodeAt(0) <= 57);
}

/** Every process with its command line (arguments joined by spaces; empty for kernel threads and zombies). */
export function listProcesses(): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const name of numericEntries()) {
    try {
      const raw = readFileSync(`/proc/${name}/cmdline`, "utf8");
      out.push({ pid: Number(name), cmdline: raw.replace(/\0+$/, "").replaceAll("\0", " ") });
    } catch {
      // ended while we looked
    }
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** Every descendant of `pid` (not `pid` itself), parents before children. */
export function descendantPids(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of numericEntries()) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue;
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const list = children.get(ppid);
    if (list) list.push(Number(name));
    else children.set(ppid, [Number(name)]);
  }
  const out: number[] = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const next = queue.shift()!;
    out.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return out;
}

/** process.kill that ignores a process (or group, with a negative pid) that is already gone. */
export function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // ESRCH
  }
}
