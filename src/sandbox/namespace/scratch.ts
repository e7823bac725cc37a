/**
 * Scratch folders of namespace sandboxes live under
 * `<runtime>/sandboxes/pid-<pid>-<starttime>/<sandbox-id>`, grouped by the process
 * that made them (the same owner naming as our cgroups), so a later process can
 * remove what a crashed one left without touching a live neighbour's sandboxes.
 */
import { rmdirSync } from "node:fs";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { ownOwnerName, ownerAlive, parseOwnerName } from "../../policy/limits/index.js";
import { unmountAllUnder } from "../scratch-disk.js";

const ownDirs = new Map<string, Promise<string>>();

/** This process's folder for sandbox scratch space under `sandboxesDir` (created once). */
export function ownScratchDir(sandboxesDir: string): Promise<string> {
  let dir = ownDirs.get(sandboxesDir);
  if (!dir) {
    dir = ownOwnerName().then(async (name) => {
      const path = join(sandboxesDir, name);
      // 0711: the sandbox user must traverse to its own folders but list nothing.
      await mkdir(path, { recursive: true, mode: 0o711 });
      removeAtExitIfEmpty(path);
      return path;
    });
    ownDirs.set(sandboxesDir, dir);
  }
  return dir;
}

/**
 * When this process exits, remove `dirs` (innermost first) if they are empty by then. A
 * process ending normally leaves no empty owner folder behind for the next one's sweep;
 * rmdir never removes anything still in use, and a folder that is not empty (a sandbox
 * not destroyed, a crash) stays for sweepStaleScratch.
 */
export function removeAtExitIfEmpty(...dirs: string[]): void {
  process.once("exit", () => {
    for (const dir of dirs) {
      try {
        rmdirSync(dir);
      } catch {
        return; // not empty (or gone): leave it, and what contains it, to the sweep
      }
    }
  });
}

/** Unmount and remove scratch folders whose owning process is gone; returns what was removed. */
export async function sweepStaleScratch(sandboxesDir: string): Promise<string[]> {
  const removed: string[] = [];
  const names = await readdir(sandboxesDir).catch(() => [] as string[]);
  for (const name of names) {
    const owner = parseOwnerName(name);
    if (!owner || (await ownerAlive(owner))) continue;
    const dir = join(sandboxesDir, name);
    // Their scratch disks first: rm cannot remove a mount point (and would only empty it).
    await unmountAllUnder(dir);
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    removed.push(dir);
  }
  return removed;
}
