/**
 * Parsers for the kernel's text files that describe cgroups. Pure functions on
 * strings, so every format quirk is covered by unit tests with fixtures.
 */
import { posix } from "node:path";

/** One line of /proc/self/mountinfo, reduced to what cgroup detection needs. */
export interface MountEntry {
  /** The mounted subtree's root inside its filesystem ("/" unless a bind mount or a cgroup namespace). */
  root: string;
  mountPoint: string;
  fsType: string;
  /** Per-superblock options: for cgroup v1 they name the hierarchy's controllers. */
  superOptions: string[];
  readOnly: boolean;
}

/** One line of /proc/self/cgroup. */
export interface CgroupMembership {
  /** 0 is the cgroup v2 (unified) hierarchy. */
  hierarchyId: number;
  /** v1 controllers of that hierarchy ("cpu", "cpuacct", "name=systemd"); empty for v2. */
  controllers: string[];
  /** Our cgroup inside the hierarchy, relative to our cgroup namespace's root. */
  path: string;
  /** The kernel appends " (deleted)" when our cgroup was removed under us. */
  deleted: boolean;
}

// mountinfo escapes space, tab, newline and backslash as \ooo octal.
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parse /proc/self/mountinfo (see proc(5)); malformed lines are skipped. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    // Fields: id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    const sep = f.indexOf("-", 6);
    if (sep < 0) continue;
    const fsType = f[sep + 1];
    const superOpts = f[sep + 3];
    if (fsType === undefined || superOpts === undefined) continue;
    const mountOpts = (f[5] ?? "").split(",");
    out.push({
      root: unescapeMountField(f[3] ?? ""),
      mountPoint: unescapeMountField(f[4] ?? ""),
      fsType,
      superOptions: superOpts.split(","),
      readOnly: mountOpts.includes("ro"),
    });
  }
  return out;
}

/** Parse /proc/self/cgroup (see cgroups(7)); malformed lines are skipped. */
export function parseProcCgroup(text: string): CgroupMembership[] {
  const out: CgroupMembership[] = [];
  for (const line of text.split("\n")) {
    // The path may itself contain ':' so split only on the first two.
    const a = line.indexOf(":");
    const b = a < 0 ? -1 : line.indexOf(":", a + 1);
    if (a < 0 || b < 0) continue;
    const id = Number(line.slice(0, a));
    if (!Number.isInteger(id) || id < 0) continue;
    let path = line.slice(b + 1);
    const deleted = path.endsWith(" (deleted)");
    if (deleted) path = path.slice(0, -" (deleted)".length);
    if (!path.startsWith("/")) continue;
    const list = line.slice(a + 1, b);
    out.push({ hierarchyId: id, controllers: list === "" ? [] : list.split(","), path, deleted });
  }
  return out;
}

/**
 * Where cgroup `path` (as /proc/self/cgroup shows it) lives under a mount whose
 * root is `mountRoot`; undefined when the mount does not contain it.
 */
export function cgroupDirUnder(mountPoint: string, mountRoot: string, path: string): string | undefined {
  const root = mountRoot === "/" ? "" : mountRoot.replace(/\/+$/, "");
  if (root !== "" && path !== root && !path.startsWith(root + "/")) return undefined;
  const rel = path.slice(root.length);
  return posix.join(mountPoint, rel === "" ? "/" : rel).replace(/(.)\/+$/, "$1");
}

/**
 * Parse a "flat keyed" cgroup file ("key value" per line: memory.events,
 * pids.events, cpu.stat, v1 memory.oom_control). Non-numeric values are skipped.
 */
export function parseFlatKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^(\S+)\s+(\S+)\s*$/.exec(line);
    if (!m) continue;
    const n = Number(m[2]);
    if (Number.isFinite(n)) out.set(m[1]!, n);
  }
  return out;
}

/** Parse a single-number cgroup file (pids.current, memory.current); "max" is Infinity. */
export function parseSingleValue(text: string): number {
  const t = text.trim();
  if (t === "max") return Infinity;
  const n = Number(t);
  return t === "" || !Number.isFinite(n) ? NaN : n;
}

/** Parse cgroup.procs: one pid per line. */
export function parseProcs(text: string): number[] {
  const out: number[] = [];
  for (const line of text.split("\n")) {
    const n = Number(line.trim());
    if (line.trim() !== "" && Number.isInteger(n) && n > 0) out.push(n);
  }
  return out;
}

/** The start time (field 22, clock ticks after boot) from /proc/<pid>/stat. */
export function parseProcStatStartTime(text: string): number | undefined {
  // comm (field 2) is in parentheses and may contain spaces and ')', so split after the last ')'.
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const rest = text.slice(close + 1).trim().split(/\s+/);
  const start = Number(rest[22 - 3]);
  return Number.isInteger(start) && start >= 0 ? start : undefined;
}
