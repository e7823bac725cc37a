/**
 * Read-only host paths inside a sandbox (`SandboxSpec.mounts`) and the checks a
 * caller's host path needs before bwrap or runsc sees it: their own errors
 * ("Permission denied", "Can't find source path") don't say what to do.
 */
import { stat } from "node:fs/promises";
import { dirname, isAbsolute, posix } from "node:path";
import { SandboxError } from "./errors.js";
import type { SandboxMount } from "./types.js";

/** Targets a mount must not be: the sandbox's own files. */
const RESERVED_EXACT = ["/", "/etc/passwd", "/etc/group", "/etc/resolv.conf"];
/** Trees a mount must not cover or lie in: writable areas and kernel filesystems. */
const RESERVED_TREES = ["/workspace", "/tmp", "/proc", "/dev"];

/** Why `target` cannot be a mount target, or undefined when it can. */
export function mountTargetProblem(target: string): string | undefined {
  if (!target.startsWith("/")) return `mount target ${target} must be an absolute path`;
  if (target.split("/").includes("..")) return `mount target ${target} must not contain '..'`;
  const t = posix.normalize(target).replace(/\/+$/, "") || "/";
  if (RESERVED_EXACT.includes(t) || RESERVED_TREES.some((r) => t === r || t.startsWith(`${r}/`))) {
    return `mount target ${target} is one of the sandbox's own areas; use a path such as /opt/<name> (not /, /etc/passwd, /etc/group, /etc/resolv.conf, /workspace, /tmp, /proc or /dev)`;
  }
  return undefined;
}

/**
 * Every parent folder of `path` must be searchable by the sandbox user, since
 * bwrap and runsc resolve the path with that user's rights.
 */
export async function checkSearchable(path: string, who: { uid: number; gid: number }, what: string, code: "E_WORKSPACE" | "E_MOUNT"): Promise<void> {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const st = await stat(dir);
    const bit = st.uid === who.uid ? 0o100 : st.gid === who.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) {
      throw new SandboxError(code, `The sandbox user (uid ${who.uid}) cannot reach the ${what} ${path}: ${dir} is not searchable by it. Use a path outside ${dir}, allow search with \`chmod o+x ${dir}\`, or set sandbox.uid in the config.`, { details: { path, blockedAt: dir } });
    }
    if (dir === "/") return;
  }
}

/** Validate a spec's mounts for a sandbox that runs as `who`; throws E_MOUNT with the fix. */
export async function checkMounts(mounts: readonly SandboxMount[] | undefined, who: { uid: number; gid: number }): Promise<void> {
  for (const m of mounts ?? []) {
    if (!isAbsolute(m.source)) throw new SandboxError("E_MOUNT", `mount source ${m.source} must be an absolute host path.`, { details: { ...m } });
    const problem = mountTargetProblem(m.target);
    if (problem) throw new SandboxError("E_MOUNT", `${problem}.`, { details: { ...m } });
    const st = await stat(m.source).catch(() => undefined);
    if (!st) throw new SandboxError("E_MOUNT", `mount source ${m.source} does not exist on the host; create it or fix sandbox.mounts.`, { details: { ...m } });
    await checkSearchable(m.source, who, "mount source", "E_MOUNT");
  }
}
