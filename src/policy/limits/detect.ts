/**
 * Which cgroup hierarchy this process can put sandboxes in, found once.
 *
 * Preference: cgroup v2 when our own v2 cgroup offers memory+pids+cpu and we may
 * enable them for children; else cgroup v1 (memory, pids and cpu hierarchies,
 * plus cpuacct for CPU usage and freezer for race-free kills when mounted).
 * Sandboxes always go *under our own cgroup* so limits set on us still bound them.
 *
 * cgroup v2's "no internal processes" rule: a non-root cgroup that holds
 * processes cannot enable controllers for its children. When our own v2 cgroup
 * holds exactly one process (us, e.g. started by
 * `systemd-run --scope -p Delegate=yes`), setup moves us into a leaf
 * `<own>/luminaguard-supervisor` first, the way container runtimes do. When it
 * holds other processes too (a terminal's scope), we do not move processes that
 * are not ours and do not create cgroups outside our delegated subtree: v2 is
 * then unusable and the reason says how to start LuminaGuard instead.
 */
import { constants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { cgroupDirUnder, parseMountInfo, parseProcCgroup, parseProcs, type CgroupMembership, type MountEntry } from "./parse.js";
import { errnoOf } from "./cgroupfs.js";

/** The folder under our own cgroup that holds every sandbox cgroup. */
export const PARENT_NAME = "luminaguard";
/** v2 only: the leaf our own process moves into so our cgroup can enable controllers. */
export const SUPERVISOR_LEAF = "luminaguard-supervisor";
/** The v2 controllers a sandbox needs. */
export const V2_CONTROLLERS = ["memory", "pids", "cpu"] as const;
/** v1 controllers we use: the first three are required. */
const V1_REQUIRED = ["memory", "pids", "cpu"] as const;
const V1_OPTIONAL = ["cpuacct", "freezer"] as const;

/** One cgroup hierarchy we create sandbox cgroups in. */
export interface CgroupHierarchy {
  /** v1: the hierarchy's controllers we use ("cpu", "cpuacct" when co-mounted); v2: memory, pids, cpu. */
  controllers: string[];
  mountPoint: string;
  /** Our own cgroup in this hierarchy, as /proc/self/cgroup shows it. */
  ownPath: string;
  /** The directory of our own cgroup: `luminaguard/` is created in it. */
  base: string;
  /** v1 only: the hierarchy also carries cpuset, whose new cgroups need cpus/mems copied in. */
  hasCpuset?: boolean;
}

/** What detectCgroups found. */
export interface CgroupHost {
  /** The version in use; when nothing is writable, the one that came closest. */
  version: 1 | 2;
  /** True when createSandboxCgroup can work here. */
  writable: boolean;
  /** Why not writable (both versions' reasons). */
  reason?: string;
  /** v2: exactly one; v1: one per mounted hierarchy we use. Empty when not writable. */
  hierarchies: CgroupHierarchy[];
  /** v2: our process must first move into `<base>/luminaguard-supervisor` (see above). */
  vacateOwnCgroup: boolean;
}

/** The filesystem questions detection asks; a fake in unit tests. */
export interface DetectProbe {
  read(path: string): Promise<string | undefined>;
  writable(path: string): Promise<boolean>;
}

const realProbe: DetectProbe = {
  async read(path) {
    try {
      return await readFile(path, "utf8");
    } catch (err) {
      if (errnoOf(err) === "ENOENT" || errnoOf(err) === "ENOTDIR") return undefined;
      throw err;
    }
  },
  async writable(path) {
    // access(W_OK) also reports EROFS, the usual read-only /sys/fs/cgroup in containers.
    return access(path, constants.W_OK).then(
      () => true,
      () => false,
    );
  },
};

let cached: Promise<CgroupHost> | undefined;

/** Detect the cgroup setup of this host once per process (later calls reuse the answer). */
export function detectCgroups(): Promise<CgroupHost> {
  cached ??= (async () => {
    const [mountinfo, selfCgroup] = await Promise.all([readFile("/proc/self/mountinfo", "utf8"), readFile("/proc/self/cgroup", "utf8")]);
    return analyzeCgroups({ mountinfo, selfCgroup, pid: process.pid }, realProbe);
  })();
  return cached;
}

/** Forget the cached detection (tests, or after the admin changed the host). */
export function resetCgroupDetection(): void {
  cached = undefined;
}

/** Decide from mountinfo and /proc/self/cgroup text; every file access goes through `probe`. */
export async function analyzeCgroups(input: { mountinfo: string; selfCgroup: string; pid: number }, probe: DetectProbe): Promise<CgroupHost> {
  const mounts = parseMountInfo(input.mountinfo);
  const members = parseProcCgroup(input.selfCgroup);
  const v2 = await analyzeV2(mounts, members, input.pid, probe);
  if (v2.ok) return { version: 2, writable: true, hierarchies: [v2.hierarchy], vacateOwnCgroup: v2.vacate };
  const v1 = await analyzeV1(mounts, members, probe);
  if (v1.ok) return { version: 1, writable: true, hierarchies: v1.hierarchies, vacateOwnCgroup: false };
  return {
    version: v1.found ? 1 : 2,
    writable: false,
    reason: `cgroup v2: ${v2.reason}; cgroup v1: ${v1.reason}`,
    hierarchies: [],
    vacateOwnCgroup: false,
  };
}

type V2Result = { ok: true; hierarchy: CgroupHierarchy; vacate: boolean } | { ok: false; reason: string };

async function analyzeV2(mounts: MountEntry[], members: CgroupMembership[], pid: number, probe: DetectProbe): Promise<V2Result> {
  const me = members.find((m) => m.hierarchyId === 0);
  if (!me) return { ok: false, reason: "this process is in no cgroup v2 hierarchy" };
  if (me.deleted) return { ok: false, reason: `our cgroup ${me.path} was deleted` };
  const found = pickMount(mounts.filter((m) => m.fsType === "cgroup2"), me.path);
  if (!found) return { ok: false, reason: `no cgroup2 mount contains our cgroup ${me.path}` };
  const { mount, dir: own } = found;
  // A LuminaGuard process (or its parent) already moved itself into the supervisor leaf: the sandboxes live beside it.
  const base = basename(own) === SUPERVISOR_LEAF ? dirname(own) : own;
  const available = ((await probe.read(join(base, "cgroup.controllers"))) ?? "").trim().split(/\s+/);
  const missing = V2_CONTROLLERS.filter((c) => !available.includes(c));
  if (missing.length > 0) {
    const bound = missing.length === V2_CONTROLLERS.length ? " (on a hybrid host they are bound to cgroup v1)" : "";
    return { ok: false, reason: `${base} does not offer the ${missing.join(", ")} controller(s) to us${bound}` };
  }
  if (mount.readOnly || !(await probe.writable(base)) || !(await probe.writable(join(base, "cgroup.subtree_control")))) {
    return { ok: false, reason: `${base} is not writable for us (not root, and not a delegated subtree)` };
  }
  const hierarchy: CgroupHierarchy = { controllers: [...V2_CONTROLLERS], mountPoint: mount.mountPoint, ownPath: me.path, base };
  const enabled = ((await probe.read(join(base, "cgroup.subtree_control"))) ?? "").trim().split(/\s+/);
  if (V2_CONTROLLERS.every((c) => enabled.includes(c))) return { ok: true, hierarchy, vacate: false };
  // Only the root cgroup (which has no cgroup.type) is exempt from the no-internal-processes rule.
  const isRoot = (await probe.read(join(base, "cgroup.type"))) === undefined;
  if (isRoot) return { ok: true, hierarchy, vacate: false };
  const procs = parseProcs((await probe.read(join(base, "cgroup.procs"))) ?? "");
  if (procs.length === 0) return { ok: true, hierarchy, vacate: false };
  if (procs.length === 1 && procs[0] === pid) return { ok: true, hierarchy, vacate: true };
  const others = procs.filter((p) => p !== pid);
  return {
    ok: false,
    reason:
      `our cgroup ${base} also holds other processes (${others.slice(0, 5).join(", ")}${others.length > 5 ? ", ..." : ""}), ` +
      `and cgroup v2 lets a cgroup with processes enable no controllers for children ("no internal processes"); ` +
      `LuminaGuard moves only itself, so start it in a cgroup of its own`,
  };
}

type V1Result = { ok: true; hierarchies: CgroupHierarchy[] } | { ok: false; found: boolean; reason: string };

async function analyzeV1(mounts: MountEntry[], members: CgroupMembership[], probe: DetectProbe): Promise<V1Result> {
  const byMount = new Map<string, CgroupHierarchy>();
  const problems: string[] = [];
  let found = false;
  for (const ctrl of [...V1_REQUIRED, ...V1_OPTIONAL]) {
    const required = (V1_REQUIRED as readonly string[]).includes(ctrl);
    const me = members.find((m) => m.hierarchyId !== 0 && m.controllers.includes(ctrl));
    const located = me && !me.deleted ? pickMount(mounts.filter((m) => m.fsType === "cgroup" && m.superOptions.includes(ctrl)), me.path) : undefined;
    if (!me || !located) {
      if (required) problems.push(`the ${ctrl} controller is not mounted`);
      continue;
    }
    found = true;
    const existing = byMount.get(located.mount.mountPoint);
    if (existing) {
      existing.controllers.push(ctrl);
      continue;
    }
    if (located.mount.readOnly || !(await probe.writable(located.dir))) {
      if (required) problems.push(`${located.dir} is not writable for us (run as root)`);
      continue;
    }
    byMount.set(located.mount.mountPoint, {
      controllers: [ctrl],
      mountPoint: located.mount.mountPoint,
      ownPath: me.path,
      base: located.dir,
      hasCpuset: located.mount.superOptions.includes("cpuset"),
    });
  }
  if (problems.length > 0) return { ok: false, found, reason: problems.join("; ") };
  return { ok: true, hierarchies: [...byMount.values()] };
}

/** The mount through which our cgroup `path` is reachable; writable mounts first. */
function pickMount(candidates: MountEntry[], path: string): { mount: MountEntry; dir: string } | undefined {
  const sorted = [...candidates].sort((a, b) => Number(a.readOnly) - Number(b.readOnly));
  for (const mount of sorted) {
    const dir = cgroupDirUnder(mount.mountPoint, mount.root, path);
    if (dir !== undefined) return { mount, dir };
  }
  return undefined;
}

/** Which hierarchy serves `controller` (v2: the only one). */
export function hierarchyFor(host: CgroupHost, controller: string): CgroupHierarchy | undefined {
  return host.hierarchies.find((h) => h.controllers.includes(controller));
}
