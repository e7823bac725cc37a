/**
 * Removing sandbox cgroups that a crashed LuminaGuard process left behind.
 *
 * Only `<own cgroup>/luminaguard/` is looked at. Owner folders of processes
 * that still run (this one, or a neighbour sharing our cgroup) are kept; see
 * owner.ts. Anything else in there is stale: its processes are killed and its
 * directories removed, deepest first (cgroupfs only supports rmdir).
 */
import { rmdirSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { errnoOf } from "./cgroupfs.js";
import { detectCgroups, PARENT_NAME } from "./detect.js";
import { LimitsError } from "./errors.js";
import { killAllIn, pollUntil } from "./kill.js";
import { ownerAlive, ownOwnerName, parseOwnerName } from "./owner.js";

const KILL_BUDGET_MS = 300;
const RMDIR_BUDGET_MS = 200;

/** Remove stale `luminaguard/*` cgroups of dead owners; returns every directory removed. */
export async function sweepStaleCgroups(): Promise<string[]> {
  const host = await detectCgroups();
  if (!host.writable) return [];
  const me = await ownOwnerName();
  const removed: string[] = [];
  const failed: string[] = [];
  for (const h of host.hierarchies) {
    const parent = join(h.base, PARENT_NAME);
    for (const name of await subdirs(parent)) {
      if (name === me) continue;
      const owner = parseOwnerName(name);
      if (owner && (await ownerAlive(owner))) continue;
      await removeTree(join(parent, name), host.version, removed, failed);
    }
  }
  if (failed.length > 0) {
    throw new LimitsError("E_CGROUP_CLEANUP", `Could not remove stale cgroup ${failed[0]}${failed.length > 1 ? ` and ${failed.length - 1} more` : ""}: processes in it survive SIGKILL or it is busy.`, {
      details: { removed, leftovers: failed },
    });
  }
  return removed;
}

/**
 * Remove the empty owner folders of dead processes under these `luminaguard/`
 * folders. Test runners and crashes end processes without an 'exit' event, so
 * empty owner folders would pile up; rmdir fails on a non-empty one, so this
 * never touches a sandbox (that is sweepStaleCgroups' job, on request).
 */
export async function pruneDeadOwners(parents: string[], me: string): Promise<void> {
  for (const parent of parents) {
    for (const name of await subdirs(parent).catch(() => [])) {
      const owner = parseOwnerName(name);
      if (name === me || !owner || (await ownerAlive(owner))) continue;
      try {
        rmdirSync(join(parent, name));
      } catch {
        // not empty (a crashed owner's sandboxes) or already gone
      }
    }
  }
}

async function subdirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return [];
    throw err;
  }
}

async function removeTree(dir: string, version: 1 | 2, removed: string[], failed: string[]): Promise<void> {
  for (const child of await subdirs(dir)) await removeTree(join(dir, child), version, removed, failed);
  // cgroup.kill of a v2 cgroup reaches descendants too; v1 has no descendants left at this point.
  await killAllIn({ version, dirs: [dir] }, "SIGKILL", KILL_BUDGET_MS);
  const gone = await pollUntil(() => {
    try {
      rmdirSync(dir);
      return true;
    } catch (err) {
      if (errnoOf(err) === "ENOENT") return true;
      if (errnoOf(err) === "EBUSY" || errnoOf(err) === "ENOTEMPTY") return false;
      throw err;
    }
  }, RMDIR_BUDGET_MS);
  if (gone) removed.push(dir);
  else failed.push(dir);
}
