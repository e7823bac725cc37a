/**
 * Removing what a crashed LuminaGuard process left of its gVisor sandboxes.
 *
 * Only owner folders under `<runtime>/gvisor/` whose process is gone are
 * touched (pid + start time, see policy/limits/owner.ts). Their sentry and
 * gofer processes are found by the exact `--root=<that owner's state folder>`
 * flag runsc passes to them, so no other runsc user's sandbox is ever killed;
 * then their scratch disks are unmounted and the folder (bundles, scratch,
 * runsc state) is removed. Their cgroups go
 * with policy/limits' own sweep, which the backend runs too.
 */
import { readFileSync, readdirSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { ownerAlive, parseOwnerName } from "../../policy/limits/index.js";
import { killQuietly } from "../proc-tree.js";
import { unmountAllUnder } from "../scratch-disk.js";

/** Host pids whose argv holds `--root=<stateRoot>` (a sentry, gofer or runsc call of that state folder). */
export function runscProcesses(stateRoot: string): number[] {
  const flag = `--root=${stateRoot}\0`;
  const flagPair = `--root\0${stateRoot}\0`;
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${name}/cmdline`, "latin1");
    } catch {
      continue; // ended while we looked
    }
    if (cmd.includes(flag) || cmd.includes(flagPair)) out.push(Number(name));
  }
  return out;
}

/** Kill the runsc processes of dead owners and remove their folders; returns the folders removed. */
export async function sweepStaleGvisor(baseDir: string): Promise<string[]> {
  const removed: string[] = [];
  const names = await readdir(baseDir).catch(() => [] as string[]);
  for (const name of names) {
    const owner = parseOwnerName(name);
    if (!owner || (await ownerAlive(owner))) continue;
    const dir = join(baseDir, name);
    const stateRoot = join(dir, "state");
    // Twice: a gofer can outlive its sentry by a moment.
    for (let round = 0; round < 2; round++) {
      for (const pid of runscProcesses(stateRoot)) killQuietly(pid, "SIGKILL");
      await new Promise((r) => setTimeout(r, 20));
    }
    // Their scratch disks (tmpfs mounts): rm cannot remove a mount point.
    await unmountAllUnder(dir);
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    removed.push(dir);
  }
  return removed;
}
