/**
 * Host checks for sandbox resource limits: is there a cgroup hierarchy we may
 * create sandbox cgroups in (detectCgroups decides, the same way the backend
 * will), and does the kernel offer the memory, pids and cpu controllers.
 * Read-only: nothing is created, so running doctor leaves no cgroup behind.
 */
import { readFile } from "node:fs/promises";
import { detectCgroups, type CgroupHost } from "./index.js";
import { CGROUP_UNAVAILABLE_HINT } from "./errors.js";
import type { Probe, ProbeOutcome } from "../../probe.js";

/** Controllers every sandbox's limits need (memory bytes, process count, CPU quota). */
export const LIMIT_CONTROLLERS = ["memory", "pids", "cpu"] as const;

/** Parse /proc/cgroups into controller name → enabled (a controller can be built in yet disabled at boot). */
export function parseProcCgroups(text: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    // subsys_name hierarchy num_cgroups enabled
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[0] === "") continue;
    out.set(f[0]!, f[3] === "1");
  }
  return out;
}

/** Judge whether sandbox cgroups can be created here. */
export function judgeCgroups(host: CgroupHost): ProbeOutcome {
  if (!host.writable) {
    return { status: "fail", detail: `cgroup v${host.version}: no hierarchy LuminaGuard may write to (${host.reason ?? "no reason given"})`, fix: CGROUP_UNAVAILABLE_HINT };
  }
  const bases = [...new Set(host.hierarchies.map((h) => h.base))];
  const where = host.version === 2 ? bases[0] : `${bases.length} hierarchies under our own cgroups`;
  // v2 "no internal processes": setup will move us into a leaf first; say so, it shows up in /proc/self/cgroup.
  const vacate = host.vacateOwnCgroup ? "; LuminaGuard will move itself into a luminaguard-supervisor leaf first" : "";
  return { status: "ok", detail: `cgroup v${host.version}, writable (${where})${vacate}` };
}

/** Judge memory/pids/cpu availability from the detected host and /proc/cgroups (undefined when absent). */
export function judgeControllers(host: CgroupHost, procCgroups: Map<string, boolean> | undefined): ProbeOutcome {
  const disabled = procCgroups ? LIMIT_CONTROLLERS.filter((c) => procCgroups.get(c) !== true) : [];
  if (disabled.length > 0) {
    const bootFlags = disabled.map((c) => `cgroup_enable=${c}`).join(" ");
    return {
      status: "fail",
      detail: `the kernel does not offer the ${disabled.join(", ")} controller(s) (/proc/cgroups)`,
      fix: `Enable them at boot: add "${bootFlags}" to the kernel command line (e.g. on Raspberry Pi OS, also cgroup_memory=1), or use a kernel built with them.`,
    };
  }
  if (!host.writable) {
    return { status: "skip", detail: `${LIMIT_CONTROLLERS.join(", ")} are in the kernel, but unusable until a cgroup hierarchy is writable (see cgroups)` };
  }
  const parts = host.hierarchies.map((h) => (host.version === 2 ? h.controllers.join(", ") : `${h.controllers.join("+")} (${h.mountPoint})`));
  const missing = LIMIT_CONTROLLERS.filter((c) => !host.hierarchies.some((h) => h.controllers.includes(c)));
  if (missing.length > 0) {
    return { status: "fail", detail: `the ${missing.join(", ")} controller(s) are not usable; found: ${parts.join("; ")}`, fix: CGROUP_UNAVAILABLE_HINT };
  }
  return { status: "ok", detail: `memory, pids and cpu limits available: ${parts.join("; ")}` };
}

/** The cgroup checks, in display order. */
export function limitsProbes(): Probe[] {
  return [
    {
      id: "limits.cgroups",
      title: "cgroups",
      onError: "fail",
      async run() {
        return judgeCgroups(await detectCgroups());
      },
    },
    {
      id: "limits.controllers",
      title: "memory/pids/cpu controllers",
      onError: "fail",
      async run() {
        const [host, text] = await Promise.all([detectCgroups(), readFile("/proc/cgroups", "utf8").catch(() => undefined)]);
        return judgeControllers(host, text === undefined ? undefined : parseProcCgroups(text));
      },
    },
  ];
}
