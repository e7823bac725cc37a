import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { runtimeDir } from "../../src/config/paths.js";

/** Folders named like one of `ids` anywhere under `root`, to `depth` levels. */
function findNamed(root: string, ids: Set<string>, depth: number): string[] {
  const out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return out;
  }
  for (const name of entries) {
    const p = join(root, name);
    const dir = (() => {
      try {
        return statSync(p).isDirectory();
      } catch {
        return false; // removed while we looked
      }
    })();
    if (!dir) continue;
    if (ids.has(name)) out.push(p);
    else if (depth > 0) out.push(...findNamed(p, ids, depth - 1));
  }
  return out;
}

/** Scratch folders and cgroups of namespace sandboxes that still exist. */
export async function namespaceLeftovers(ids: string[]): Promise<string[]> {
  const set = new Set(ids);
  return [...findNamed(join(runtimeDir(), "sandboxes"), set, 1), ...findNamed("/sys/fs/cgroup", set, 7)];
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
