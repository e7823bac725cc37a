/**
 * Small I/O helpers for cgroupfs. Control files must be opened write-only
 * without O_CREAT (kernfs cannot create files, so O_CREAT turns a missing file
 * into a confusing EACCES) and written in one write() call.
 */
import { constants } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseProcs } from "./parse.js";

/** The errno code ("ENOENT", "EBUSY") of a Node fs error, if any. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Write one value to a cgroup control file. */
export async function writeControl(path: string, value: string): Promise<void> {
  await writeFile(path, value, { flag: constants.O_WRONLY });
}

/** Read a cgroup file; undefined when it does not exist (an older kernel, a missing controller). */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return undefined;
    throw err;
  }
}

/** The pids in a cgroup (not its descendants); [] when the cgroup is gone. */
export async function readProcs(dir: string): Promise<number[]> {
  const text = await readOptional(join(dir, "cgroup.procs"));
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

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
