/**
 * One-time setup of the folders every sandbox cgroup lives in:
 * `<own cgroup>/luminaguard/<owner>/` per hierarchy. Done once per process and
 * cached, so a sandbox spawn pays only for its own mkdir and limit writes.
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { errnoOf, readOptional, writeControl } from "./cgroupfs.js";
import { PARENT_NAME, SUPERVISOR_LEAF, V2_CONTROLLERS, type CgroupHierarchy, type CgroupHost } from "./detect.js";
import { LimitsError } from "./errors.js";
import { trackOwnerDirs } from "./exit-hook.js";
import { ownOwnerName } from "./owner.js";
import { pruneDeadOwners } from "./sweep.js";

const prepared = new WeakMap<CgroupHost, Promise<string[]>>();

/** The owner folder per hierarchy (same order as host.hierarchies), created on first use. */
export function ensureOwnerDirs(host: CgroupHost): Promise<string[]> {
  let p = prepared.get(host);
  if (!p) {
    p = prepare(host);
    prepared.set(host, p);
    // A failed setup is retried by the next sandbox (the admin may have fixed it).
    p.catch(() => prepared.delete(host));
  }
  return p;
}

/** Forget the cached setup, e.g. after someone removed our folders. */
export function forgetOwnerDirs(host: CgroupHost): void {
  prepared.delete(host);
}

async function prepare(host: CgroupHost): Promise<string[]> {
  const owner = await ownOwnerName();
  const dirs = host.version === 2 ? [prepareV2(host, owner)] : host.hierarchies.map((h) => prepareV1(h, owner));
  trackOwnerDirs(dirs);
  await pruneDeadOwners(dirs.map((d) => dirname(d)), owner);
  return dirs;
}

function prepareV2(host: CgroupHost, owner: string): string {
  const h = host.hierarchies[0];
  if (!h) throw new LimitsError("E_CGROUP_UNAVAILABLE", "No cgroup v2 hierarchy was detected.");
  if (host.vacateOwnCgroup) {
    // Our cgroup must hold no processes before it may enable controllers for children.
    const leaf = join(h.base, SUPERVISOR_LEAF);
    step(`create ${leaf}`, () => mkdirExistOk(leaf));
    step(`move this process into ${leaf}`, () => writeControl(join(leaf, "cgroup.procs"), String(process.pid)));
  }
  enableControllers(h.base);
  const parent = join(h.base, PARENT_NAME);
  step(`create ${parent}`, () => mkdirExistOk(parent));
  enableControllers(parent);
  const ownerDir = join(parent, owner);
  step(`create ${ownerDir}`, () => mkdirExistOk(ownerDir));
  enableControllers(ownerDir);
  return ownerDir;
}

function enableControllers(dir: string): void {
  const file = join(dir, "cgroup.subtree_control");
  const enabled = (readOptional(file) ?? "").trim().split(/\s+/);
  const wanted = V2_CONTROLLERS.filter((c) => !enabled.includes(c));
  if (wanted.length === 0) return;
  try {
    writeControl(file, wanted.map((c) => `+${c}`).join(" "));
  } catch (err) {
    const why =
      errnoOf(err) === "EBUSY"
        ? `${dir} holds processes, and cgroup v2 forbids enabling controllers for children of a cgroup with processes. Start LuminaGuard in a cgroup of its own, e.g. \`systemd-run --user --scope -p Delegate=yes luminaguard ...\`.`
        : `${errnoOf(err) ?? String(err)}.`;
    throw new LimitsError("E_CGROUP_SETUP", `Could not enable the ${wanted.join(", ")} controller(s) in ${file}: ${why}`, { cause: err, details: { path: file } });
  }
}

function prepareV1(h: CgroupHierarchy, owner: string): string {
  const parent = join(h.base, PARENT_NAME);
  const created = step(`create ${parent}`, () => mkdirExistOk(parent));
  if (created && h.hasCpuset) {
    // A cpuset cgroup accepts no process until cpus and mems are set; clone_children makes our subtree inherit them.
    step(`configure cpuset in ${parent}`, () => {
      for (const f of ["cpuset.cpus", "cpuset.mems"]) writeControl(join(parent, f), (readOptional(join(h.base, f)) ?? "").trim());
      writeControl(join(parent, "cgroup.clone_children"), "1");
    });
  }
  const ownerDir = join(parent, owner);
  step(`create ${ownerDir}`, () => mkdirExistOk(ownerDir));
  return ownerDir;
}

/** mkdir that tolerates an existing folder; true when it created one. */
function mkdirExistOk(dir: string): boolean {
  try {
    mkdirSync(dir);
    return true;
  } catch (err) {
    if (errnoOf(err) === "EEXIST") return false;
    throw err;
  }
}

function step<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof LimitsError) throw err;
    throw new LimitsError("E_CGROUP_SETUP", `Could not ${what}: ${errnoOf(err) ?? String(err)}. Check that LuminaGuard runs as root or owns this cgroup subtree.`, { cause: err });
  }
}
