/**
 * Owner folders: `luminaguard/pid-<pid>-<starttime>/<sandbox-id>`.
 *
 * Several LuminaGuard processes can share one cgroup (a daemon and a CLI, or
 * test workers forked from one runner), so a sweep must tell a crashed owner's
 * leftovers from a live neighbour's sandboxes. The pid alone is not enough
 * (pids are reused); pid plus the process start time from /proc/<pid>/stat is.
 */
import { readFile } from "node:fs/promises";
import { parseProcStatStartTime } from "./parse.js";

/** The folder name for the process with this pid and start time. */
export function ownerName(pid: number, startTime: number): string {
  return `pid-${pid}-${startTime}`;
}

/** The pid and start time encoded in an owner folder name, if it is one. */
export function parseOwnerName(name: string): { pid: number; startTime: number } | undefined {
  const m = /^pid-([1-9][0-9]*)-([0-9]+)$/.exec(name);
  if (!m) return undefined;
  return { pid: Number(m[1]), startTime: Number(m[2]) };
}

async function startTimeOf(pid: number | "self"): Promise<number | undefined> {
  try {
    return parseProcStatStartTime(await readFile(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

let own: Promise<string> | undefined;

/** This process's owner folder name (cached). */
export function ownOwnerName(): Promise<string> {
  own ??= startTimeOf("self").then((t) => ownerName(process.pid, t ?? 0));
  return own;
}

/** True while the process that made owner folder `name` still runs. */
export async function ownerAlive(owner: { pid: number; startTime: number }): Promise<boolean> {
  const t = await startTimeOf(owner.pid);
  return t !== undefined && t === owner.startTime;
}
