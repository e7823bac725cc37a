/**
 * Last-chance cleanup when this process exits with sandbox cgroups still alive:
 * kill their processes and remove what can be removed, synchronously (an
 * 'exit' listener cannot await). Whatever survives is for sweepStaleCgroups,
 * which recognises our owner folder as dead once we are gone.
 */
import { readFileSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { killQuiet } from "./cgroupfs.js";
import { parseProcs } from "./parse.js";

const liveDirs = new Map<object, string[]>();
const ownerDirs = new Set<string>();
let hooked = false;

/** How long the exit hook may block waiting for killed processes to leave. */
const EXIT_WAIT_MS = 100;

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.once("exit", cleanupAtExit);
}

/** Remember a live sandbox cgroup until it is destroyed. */
export function trackLive(key: object, dirs: string[]): void {
  liveDirs.set(key, dirs);
  hook();
}

/** Forget a sandbox cgroup once destroy() removed it. */
export function untrackLive(key: object): void {
  liveDirs.delete(key);
}

/** Owner folders to remove at exit when they are empty. */
export function trackOwnerDirs(dirs: string[]): void {
  for (const d of dirs) ownerDirs.add(d);
  hook();
}

function cleanupAtExit(): void {
  let pending = [...liveDirs.values()].flat();
  for (const dir of pending) {
    let procs: number[];
    try {
      procs = parseProcs(readFileSync(join(dir, "cgroup.procs"), "utf8"));
    } catch {
      continue;
    }
    for (const pid of procs) {
      try {
        killQuiet(pid, "SIGKILL");
      } catch {
        // not ours to kill; the sweep reports it later
      }
    }
  }
  const deadline = performance.now() + EXIT_WAIT_MS;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  while (pending.length > 0) {
    pending = pending.filter((dir) => !tryRmdir(dir));
    if (pending.length === 0 || performance.now() > deadline) break;
    Atomics.wait(nap, 0, 0, 2);
  }
  for (const dir of ownerDirs) tryRmdir(dir);
}

function tryRmdir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "ENOENT";
  }
}
