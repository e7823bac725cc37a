/**
 * Leak checks for the chaos tests: everything of ours a sandbox (or a whole
 * LuminaGuard process) may leave on the host after a crash, found by the ids
 * in its names: processes, cgroups, mounts, network namespaces, veths, nft
 * chains and folders. Each returns readable lines; [] means nothing leaked.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { pidsWithMarker } from "../helpers/procs.js";
import { foldersNamed } from "../helpers/leftovers.js";

export { foldersNamed };

/** Host processes whose command line or cgroup path names `marker`. */
export function processesNaming(marker: string): string[] {
  const out = new Set(pidsWithMarker(marker).map((p) => `pid ${p} (command line names ${marker})`));
  for (const name of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      if (readFileSync(`/proc/${name}/cgroup`, "utf8").includes(marker)) out.add(`pid ${name} (in a cgroup named ${marker})`);
    } catch {
      // gone meanwhile
    }
  }
  return [...out];
}

/** Mount points of this mount namespace that name `marker`. */
export function mountsNaming(marker: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.includes(marker))
    .map((l) => `mount ${l.split(" ")[4]}`);
}

/** cgroups (anywhere under /sys/fs/cgroup) named `name`, or starting with it when `prefix`. */
export function cgroupsNamed(name: string, prefix = false): string[] {
  return foldersNamed("/sys/fs/cgroup", (n) => (prefix ? n.startsWith(name) : n === name), 8).map((p) => `cgroup ${p}`);
}

function run(argv: string[]): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return "";
  }
}

/** The firewall's network namespace, veth pair and nft chains for one short id (see policy/firewall/names.ts). */
export function networkObjects(short: string): string[] {
  const out: string[] = [];
  if (run(["ip", "netns", "list"]).includes(`lg-${short}`)) out.push(`netns lg-${short}`);
  for (const ifname of [`lgh${short}`, `lgs${short}`]) if (run(["ip", "-o", "link", "show"]).includes(ifname)) out.push(`link ${ifname}`);
  if (run(["nft", "list", "table", "inet", "luminaguard"]).includes(`sb_${short}`)) out.push(`nft chain sb_${short}`);
  return out;
}

/** Everything of one sandbox that survives it: processes, cgroups, mounts, and the extra folders given. */
export function sandboxLeaks(id: string, folders: string[] = []): string[] {
  const stillThere = folders.filter((f) => {
    try {
      statSync(f);
      return true;
    } catch {
      return false;
    }
  });
  return [...processesNaming(id), ...cgroupsNamed(id), ...mountsNaming(id), ...stillThere.map((f) => `folder ${f}`)];
}
