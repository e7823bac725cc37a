import { readdirSync, readFileSync, statSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { runtimeDir } from "../../src/config/paths.js";

/** Folders under `root` (to `depth` levels) whose name passes `match`; a matching folder is not searched further. */
export function foldersNamed(root: string, match: (name: string) => boolean, depth: number): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return out;
  }
  for (const name of names) {
    const p = join(root, name);
    try {
      if (!statSync(p).isDirectory()) continue;
    } catch {
      continue; // removed while we looked
    }
    if (match(name)) out.push(p);
    else if (depth > 0) out.push(...foldersNamed(p, match, depth - 1));
  }
  return out;
}

/** Folders named exactly like one of `ids` under `root`, to `depth` levels. */
function findNamed(root: string, ids: Set<string>, depth: number): string[] {
  return foldersNamed(root, (name) => ids.has(name), depth);
}

/** Mounts of this mount namespace whose mount point or source names one of `ids` (a scratch disk is both). */
export function mountsNamed(ids: Set<string>): string[] {
  const lines = readFileSync("/proc/self/mountinfo", "utf8").split("\n");
  return lines.filter((l) => [...ids].some((id) => l.includes(id))).map((l) => `mount ${l.split(" ")[4]}`);
}

/** Scratch folders, scratch-disk mounts and cgroups of namespace sandboxes that still exist. */
export async function namespaceLeftovers(ids: string[]): Promise<string[]> {
  const set = new Set(ids);
  return [...mountsNamed(set), ...findNamed(join(runtimeDir(), "sandboxes"), set, 1), ...findNamed("/sys/fs/cgroup", set, 7)];
}

/**
 * Namespace sandboxes under `<runtime>/sandboxes/<owner>/` still alive: a scratch
 * folder with anything in it (a mounted scratch disk shows its tmp/ folder), or a cgroup (for tests that run the CLI or a daemon
 * as a process, so they do not know the ids in advance).
 */
export async function liveSandboxes(runtime: string): Promise<string[]> {
  const root = join(runtime, "sandboxes");
  const live: string[] = [];
  for (const owner of await readdir(root).catch(() => [] as string[])) {
    for (const id of await readdir(join(root, owner)).catch(() => [] as string[])) {
      const inside = await readdir(join(root, owner, id)).catch(() => [] as string[]);
      const cgroups = (await namespaceLeftovers([id])).filter((p) => p.startsWith("/sys/fs/cgroup"));
      if (inside.length > 0 || cgroups.length > 0) live.push(id);
    }
  }
  return live;
}

/** QEMU processes named for one of `ids` (QEMU's -name shows in its command line). */
function vmProcesses(ids: Set<string>): string[] {
  const out: string[] = [];
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (!argv[0]?.includes("qemu-system")) continue;
      const name = argv[argv.indexOf("-name") + 1] ?? "";
      for (const id of ids) if (name === id || name.startsWith(`${id},`) || name.includes(`guest=${id}`)) out.push(`qemu pid ${pid} (${id})`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** VM folders, cgroups and QEMU processes of micro-VM sandboxes that still exist. */
export async function microvmLeftovers(ids: string[]): Promise<string[]> {
  const set = new Set(ids);
  return [...findNamed(join(runtimeDir(), "vms"), set, 1), ...findNamed("/sys/fs/cgroup", set, 7), ...vmProcesses(set)];
}
