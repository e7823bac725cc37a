/**
 * A sandbox's bounded scratch disk (limits.disk): one size-limited tmpfs that the
 * host mounts on the sandbox's own folder, holding its /tmp and fresh /workspace.
 * A sandbox that fills it gets ENOSPC; the host's disk and the other sandboxes
 * never see the write.
 *
 * Why a host tmpfs (measured on the 2-core CI machine kind, each step one process):
 *   - tmpfs: `mount` + `umount` ~3 ms each as processes; through lg-mount, a
 *     helper started once that makes the syscalls (mount-helper/), well under 1 ms;
 *   - a sparse ext4 image per sandbox: mkfs ~8 ms + loop mount ~12 ms, then
 *     umount + loop detach ~5 ms: more than half again a ~35 ms spawn;
 *   - bwrap's `--size` + `--tmpfs`: one tmpfs per bwrap, i.e. per exec, so files
 *     would not survive from one exec to the next (the contract shares them).
 * The price of tmpfs: its pages are memory, charged to the memory cgroup of the
 * process that writes them, which is the sandbox's own. Files in /tmp and
 * /workspace count toward limits.memory, as they do in a micro-VM whose /tmp is
 * guest RAM: a sandbox never holds more than its memory limit in processes and
 * files together, and a disk limit above what memory leaves ends in E_OOM before
 * ENOSPC (that error then says how much the files hold).
 *
 * Mounting needs root. Without it (the backend works unprivileged with a delegated
 * cgroup v2 tree) the folders stay plain host folders and a warning says so once.
 */
import { execFile } from "node:child_process";
import { readFile, realpath, statfs } from "node:fs/promises";
import { SandboxError } from "./errors.js";
import type { ExecResult } from "./types.js";
import { callMountHelper } from "./mount-helper/client.js";
import { formatSize } from "../config/size.js";

/** errnos of umount2 meaning nothing is mounted there: not a mount point, or no such path (a mount point cannot be removed). */
const NOT_MOUNTED = new Set([2 /* ENOENT */, 22 /* EINVAL */]);

/** mount(8) and umount(8) (util-linux), for when lg-mount is not built. */
const MOUNT = "/usr/bin/mount";
const UMOUNT = "/usr/bin/umount";

/** One inode per this many bytes, as ext4's default: bounds the kernel memory that empty files cost. */
const BYTES_PER_INODE = 16 * 1024;
const MIN_INODES = 1024;

/** A snapshot of the disk's use, from statfs. */
export interface DiskUsage {
  totalBytes: number;
  freeBytes: number;
  freeInodes: number;
}

export interface ScratchDisk {
  /** The host folder the tmpfs is mounted on (the sandbox's scratch folder). */
  readonly dir: string;
  /** The size limit, or undefined when the folder is a plain host folder (not root). */
  readonly limitBytes: number | undefined;
  /** Whether the disk is full right now (never for an unbounded folder). */
  full(): Promise<boolean>;
  /** Bytes used right now (0 for an unbounded folder, whose use is the host's business). */
  usedBytes(): Promise<number>;
  /** Unmount; the folder itself stays for the caller to remove. Idempotent. */
  release(): Promise<void>;
}

/** tmpfs's own options (mount(2)'s data) for a disk of `limitBytes`. Pure, for the unit tests. */
export function tmpfsData(limitBytes: number): string {
  const inodes = Math.max(MIN_INODES, Math.floor(limitBytes / BYTES_PER_INODE));
  // 0711 root-owned: the sandbox user reaches its own tmp/ and workspace/ but cannot list or replace them.
  return [`size=${limitBytes}`, `nr_inodes=${inodes}`, "mode=0711", "uid=0", "gid=0"].join(",");
}

/** mount(8)'s -o for the same disk: the data plus the flags lg-mount always sets. */
export function tmpfsOptions(limitBytes: number): string {
  return `${tmpfsData(limitBytes)},nosuid,nodev`;
}

/** The `mount` argv (without the binary); the source names the sandbox, so /proc/mounts shows whose it is. */
export function mountArgs(dir: string, id: string, limitBytes: number): string[] {
  return ["-t", "tmpfs", "-o", tmpfsOptions(limitBytes), `luminaguard-${id}`, dir];
}

/**
 * Full means a write of any size would fail now: under 64 KiB or 1/256 of the
 * disk free (a writer stopped by ENOSPC leaves at most a page or so), or no inode left.
 */
export function isFull(u: DiskUsage): boolean {
  return u.freeInodes === 0 || u.freeBytes < Math.max(64 * 1024, u.totalBytes / 256);
}

let warnedUnbounded = false;

/**
 * Mount a tmpfs of `limitBytes` on `dir` (an existing, empty folder) when we are
 * root; otherwise return the folder as it is, unbounded, after a one-time warning.
 */
export async function mountScratchDisk(dir: string, id: string, limitBytes: number, asRoot = process.getuid?.() === 0): Promise<ScratchDisk> {
  if (!asRoot) {
    if (!warnedUnbounded) {
      warnedUnbounded = true;
      process.emitWarning(
        `limits.disk (${formatSize(limitBytes)}) is not enforced: bounding a sandbox's /tmp and /workspace mounts a tmpfs, which needs root. ` +
          "These sandboxes write to the host's disk without a limit; run LuminaGuard as root to bound them.",
        { code: "LUMINAGUARD_DISK_UNBOUNDED" },
      );
    }
    return { dir, limitBytes: undefined, full: async () => false, usedBytes: async () => 0, release: async () => {} };
  }
  const problem = await mountTmpfs(dir, id, limitBytes);
  if (problem !== undefined) {
    throw new SandboxError("E_DISK_SETUP", `Could not mount the sandbox's ${formatSize(limitBytes)} scratch disk (a tmpfs on ${dir}): ${problem}. Mounting needs CAP_SYS_ADMIN: inside a container, start it with --cap-add SYS_ADMIN.`, {
      details: { dir, limitBytes, problem },
    });
  }
  let released: Promise<void> | undefined;
  const usage = async (): Promise<DiskUsage> => {
    const s = await statfs(dir);
    return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize, freeInodes: s.ffree };
  };
  return {
    dir,
    limitBytes,
    full: async () => (released ? false : isFull(await usage())),
    usedBytes: async () => {
      if (released) return 0;
      const u = await usage();
      return u.totalBytes - u.freeBytes;
    },
    release: () => (released ??= unmount(dir)),
  };
}

/**
 * Unmount `dir`. A plain unmount fails while something still has a file open in
 * it (a process the kill has not reaped yet); the lazy one then detaches it from
 * the host at once and frees it when the last user goes, so no mount outlives a
 * sandbox in the host's view either way.
 */
export async function unmount(dir: string): Promise<void> {
  const viaHelper = await callMountHelper(["umount", dir]);
  // Already unmounted is what was wanted.
  if (viaHelper && (viaHelper.errno === 0 || NOT_MOUNTED.has(viaHelper.errno))) return;
  if (viaHelper) {
    throw new SandboxError("E_DISK_SETUP", `Could not unmount the sandbox scratch disk at ${dir}: ${viaHelper.message}. Unmount it by hand (umount --lazy ${dir}) and remove the folder.`, { details: { dir } });
  }
  const plain = await run(UMOUNT, [dir]);
  if (plain.code === 0 || /not mounted|no mount point/i.test(plain.stderr)) return;
  const lazy = await run(UMOUNT, ["--lazy", dir]);
  if (lazy.code === 0 || /not mounted|no mount point/i.test(lazy.stderr)) return;
  throw new SandboxError("E_DISK_SETUP", `Could not unmount the sandbox scratch disk at ${dir}: ${lazy.stderr || plain.stderr}. Unmount it by hand (umount --lazy ${dir}) and remove the folder.`, { details: { dir } });
}

/** `res` with `diskFull` set when `disk` is full now (a failed statfs leaves it unset). */
export async function withDiskState(res: ExecResult, disk: ScratchDisk): Promise<ExecResult> {
  const full = await disk.full().catch(() => false);
  return full ? { ...res, diskFull: true } : res;
}

/** Mount the tmpfs through lg-mount, else mount(8); returns what went wrong, if anything. */
async function mountTmpfs(dir: string, id: string, limitBytes: number): Promise<string | undefined> {
  const source = `luminaguard-${id}`;
  const viaHelper = await callMountHelper(["mount", dir, source, tmpfsData(limitBytes)]);
  if (viaHelper) return viaHelper.errno === 0 ? undefined : viaHelper.message;
  const res = await run(MOUNT, mountArgs(dir, id, limitBytes));
  return res.code === 0 ? undefined : res.stderr || `mount exited ${res.code}`;
}

/** Mount points in `mountinfo` (the text of /proc/self/mountinfo) at or under `root`, deepest first. */
export function mountPointsUnder(mountinfo: string, root: string): string[] {
  const prefix = root.endsWith("/") ? root : `${root}/`;
  const points = mountinfo
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((p): p is string => p !== undefined)
    // The kernel escapes space, tab, newline and backslash as octal.
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === root || p.startsWith(prefix));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmount every mount at or under `root` (a dead owner's scratch folders, before they are removed). */
export async function unmountAllUnder(root: string): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8").catch(() => "");
  // mountinfo names the resolved path: a runtime folder reached through a symlink must match too.
  const real = await realpath(root).catch(() => root);
  const points = [...new Set([...mountPointsUnder(info, root), ...mountPointsUnder(info, real)])].sort((a, b) => b.length - a.length);
  for (const p of points) await unmount(p);
  return points;
}

function run(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: "utf8", timeout: 10_000, env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" } }, (err, _stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stderr: (stderr || (err && code !== 0 && typeof err.code !== "number" ? err.message : "")).trim() });
    });
  });
}
