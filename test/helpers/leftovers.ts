import { readdirSync, statSync } from "node:fs";
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
