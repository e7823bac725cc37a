/**
 * vitest globalSetup: after the whole run, remove the empty per-process owner
 * folders (`<runtime>/{sandboxes,vms,gvisor}/pid-…`) that test workers made. A
 * LuminaGuard process removes its own at exit (removeAtExitIfEmpty), but vitest
 * ends its workers with a signal, so their exit hooks never run. Only folders of
 * processes that are gone, and only empty ones: anything with content is a real
 * leftover, which is printed and left for the tests' leak checks to be fixed.
 */
import { readdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { runtimeDir } from "../../src/config/paths.js";
import { ownerAlive, parseOwnerName } from "../../src/policy/limits/index.js";

async function removeEmptyOwnerFolders(): Promise<void> {
  for (const base of ["sandboxes", "vms", "gvisor"].map((b) => join(runtimeDir(), b))) {
    let names: string[];
    try {
      names = readdirSync(base);
    } catch {
      continue;
    }
    for (const name of names) {
      const owner = parseOwnerName(name);
      if (!owner || (await ownerAlive(owner))) continue;
      const dir = join(base, name);
      try {
        // gVisor's owner folder holds runsc's state root, empty once every container is deleted.
        if (base.endsWith("gvisor")) rmdirSync(join(dir, "state"));
      } catch {
        // absent, or not empty: the rmdir below says which
      }
      try {
        rmdirSync(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") console.warn(`test run left ${dir} with content: ${readdirSync(dir).join(", ")}`);
      }
    }
  }
}

export default function setup(): () => Promise<void> {
  return removeEmptyOwnerFolders;
}
