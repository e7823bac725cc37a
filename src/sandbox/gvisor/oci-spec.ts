/**
 * The OCI bundle of one gVisor sandbox: config.json and the skeleton of its
 * root folder. Pure: every input is explicit, so unit tests pin exactly what the
 * sandbox can see.
 *
 * The view is the namespace backend's (host-view.ts): system folders and a few
 * /etc files read-only, nothing of /root, /home, /run, /var or the host's /tmp;
 * a synthetic /etc/passwd and /etc/group; /workspace and /tmp bound read-write
 * from the sandbox's scratch folder; the launcher's control folder read-only.
 * The root itself is an empty read-only folder that only holds mount points.
 */
import { posix } from "node:path";
import type { ViewEntry } from "../namespace/host-view.js";
import { CONTROL_DIR } from "./launcher.js";

export interface OciSpecInput {
  /** Sandbox id: the hostname inside. */
  id: string;
  /** Identity of the container's first process (the reaper); commands set their own. */
  uid: number;
  gid: number;
  view: ViewEntry[];
  passwdFile: string;
  groupFile: string;
  workspaceDir: string;
  tmpDir: string;
  /** Host folder with the launcher and the seccomp program. */
  controlDir: string;
  /** Extra read-only files: [host path, sandbox path] (e.g. the sandbox's resolv.conf). */
  extraRoFiles?: [string, string][];
  /** Join this network namespace (a networked sandbox); none means gVisor's own empty one. */
  netnsPath?: string | undefined;
  /** argv of the container's first process. */
  args: string[];
}

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

/** The subset of the OCI runtime spec we write. */
export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<"bounding" | "effective" | "inheritable" | "permitted" | "ambient", string[]>;
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  linux: { namespaces: { type: string; path?: string }[] };
}

const RO = ["rbind", "ro", "nosuid", "nodev"];
const RW = ["rbind", "rw", "nosuid", "nodev"];

/** The folder (relative to the bundle) that is the sandbox's root. */
export const ROOTFS = "rootfs";

/** config.json for the sandbox. */
export function ociSpec(input: OciSpecInput): OciSpec {
  const bind = (source: string, destination: string, options: string[]): OciMount => ({ destination, type: "bind", source, options });
  const mounts: OciMount[] = [
    { destination: "/proc", type: "proc", source: "proc" },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "noexec", "mode=755", "size=64k"] },
  ];
  for (const entry of input.view) if (entry.kind === "ro-bind") mounts.push(bind(entry.path, entry.path, RO));
  mounts.push(
    bind(input.passwdFile, "/etc/passwd", RO),
    bind(input.groupFile, "/etc/group", RO),
    ...(input.extraRoFiles ?? []).map(([from, to]) => bind(from, to, RO)),
    bind(input.controlDir, CONTROL_DIR, RO),
    bind(input.workspaceDir, "/workspace", RW),
    bind(input.tmpDir, "/tmp", RW),
  );
  const namespaces: { type: string; path?: string }[] = [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }];
  namespaces.push(input.netnsPath ? { type: "network", path: input.netnsPath } : { type: "network" });
  const none: string[] = [];
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: input.uid, gid: input.gid, additionalGids: [] },
      args: input.args,
      env: ["PATH=/usr/local/bin:/usr/bin:/bin"],
      cwd: "/",
      capabilities: { bounding: none, effective: none, inheritable: none, permitted: none, ambient: none },
      noNewPrivileges: true,
    },
    root: { path: ROOTFS, readonly: true },
    hostname: input.id,
    mounts,
    linux: { namespaces },
  };
}

/** What must exist inside the (read-only) root folder before the sandbox starts. */
export interface RootfsSkeleton {
  dirs: string[];
  files: string[];
  symlinks: [path: string, target: string][];
}

/**
 * Mount points for every mount of `spec` (a folder or an empty file, like its
 * source) and the view's top-level symlinks (/bin -> usr/bin on merged-/usr hosts).
 * runsc would otherwise create missing mount points itself, always as folders.
 */
export function rootfsSkeleton(spec: OciSpec, view: ViewEntry[], isDir: (hostPath: string) => boolean): RootfsSkeleton {
  const dirs = new Set<string>();
  const files: string[] = [];
  const addParents = (p: string): void => {
    for (let d = posix.dirname(p); d !== "/"; d = posix.dirname(d)) dirs.add(d);
  };
  for (const m of spec.mounts) {
    addParents(m.destination);
    if (m.type !== "bind" || isDir(m.source)) dirs.add(m.destination);
    else files.push(m.destination);
  }
  const symlinks: [string, string][] = [];
  for (const entry of view) {
    if (entry.kind !== "symlink") continue;
    addParents(entry.path);
    symlinks.push([entry.path, entry.target]);
  }
  return { dirs: [...dirs].sort(), files: files.sort(), symlinks };
}
