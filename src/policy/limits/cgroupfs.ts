/**
 * Small I/O helpers for cgroupfs.
 *
 * They are synchronous on purpose. cgroupfs files are generated in kernel
 * memory and most operations serialize on the kernel's cgroup_mutex, so a
 * mkdir, rmdir or control write takes a few microseconds and gains nothing
 * from running in parallel; a trip through libuv's thread pool costs more
 * than the operation itself (measured: creating a v1 sandbox cgroup took
 * ~1.4 ms through fs/promises + Promise.all and ~0.4 ms synchronously;
 * removing it ~1.4 ms versus ~0.2 ms). Waiting (for processes to die) stays
 * asynchronous, with timers.
 *
 * Control files are opened write-only without O_CREAT (kernfs cannot create
 * files, so O_CREAT turns a missing file into a confusing EACCES) and written
 * in one write() call, which is what the kernel parses.
 */
import { closeSync, constants, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { parseProcs } from "./parse.js";

/** The errno code ("ENOENT", "EBUSY") of a Node fs error, if any. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Write one value to a cgroup control file. */
export function writeControl(path: string, value: string): void {
  const fd = openSync(path, constants.O_WRONLY);
  try {
    writeSync(fd, value);
  } finally {
    closeSync(fd);
  }
}

/** Read a cgroup file; undefined when it does not exist (an older kernel, a missing controller, a removed cgroup). */
export function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if (errnoOf(err) === "ENOENT" || errnoOf(err) === "ENODEV") return undefined;
    throw err;
  }
}

/** The pids in a cgroup (not its descendants); [] when the cgroup is gone. */
export function readProcs(dir: string): number[] {
  const text = readOptional(join(dir, "cgroup.procs"));
  return text === undefined ? [] : parseProcs(text);
}

/** Send `signal` to `pid`, ignoring processes that are already gone. */
export function killQuiet(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if (errnoOf(err) !== "ESRCH") throw err;
  }
}

/** Resolve after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
