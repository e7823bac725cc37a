/**
 * How a command is launched in the guest: the launcher chain
 * `sh (enter the exec's cgroup) → setpriv (drop to the sandbox uid, no caps) →
 * bwrap (namespaces, read-only view, seccomp) → argv`, each link present only
 * when needed. Mirrors the namespace backend on the host (same bwrap arguments,
 * same read-only view), so a command sees the same world in every backend.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";
import { bwrapArgs } from "../sandbox/namespace/bwrap-args.js";
import { hostView } from "../sandbox/namespace/host-view.js";
import type { Confinement } from "./protocol.js";
import type { FileAreas } from "./files.js";
import { AgentError } from "./errors.js";

/** What `configure` set (plus the hostname `reseed` set). */
export interface ExecSettings {
  confine: Confinement;
  uid: number;
  gid: number;
  /** Compiled seccomp program on the guest's tmpfs; undefined for none. */
  seccompFile: string | undefined;
  unshareNet: boolean;
  hostname: string;
  /** Synthetic passwd/group naming the sandbox user (bwrap only). */
  passwdFile: string;
  groupFile: string;
}

/** One command's launch: the argv to spawn and what goes with it. */
export interface Launch {
  argv: string[];
  /** cwd of the launcher process (bwrap sets the command's own with --chdir). */
  cwd: string;
  env: Record<string, string>;
  /** Open the seccomp program for this exec (fd 3 of the child), or undefined. */
  seccompFile: string | undefined;
  /** bwrap reports the command's death by signal N as exit 128+N. */
  exitCodeEncodesSignal: boolean;
}

/** Runs `argv` after writing its own pid into the cgroup (paths travel as arguments, never in the script). */
const ENTER_SCRIPT = 'echo $$ > "$1" || { echo "luminaguard agent: cannot enter cgroup $1" >&2; exit 125; }; shift; exec "$@"';

/** Absolute path of a system program, or a typed error naming what is missing from the guest image. */
export function findProgram(name: string): string {
  for (const dir of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new AgentError("E_SANDBOX_START", `${name} is not installed in the guest; rebuild the guest image (luminaguard image build --force).`);
}

/** Write the files bwrap binds (passwd, group, seccomp program) into the agent's private state folder. */
export function writeConfinementFiles(stateDir: string, o: { uid: number; gid: number; seccomp: Uint8Array }): { passwdFile: string; groupFile: string; seccompFile: string | undefined } {
  mkdirSync(stateDir, { recursive: true, mode: 0o711 });
  const passwdFile = join(stateDir, `passwd-${o.uid}-${o.gid}`);
  const groupFile = join(stateDir, `group-${o.uid}-${o.gid}`);
  atomicWrite(passwdFile, `root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nsandbox:x:${o.uid}:${o.gid}:LuminaGuard sandbox:/workspace:/bin/sh\n`, 0o644);
  atomicWrite(groupFile, `root:x:0:\nsandbox:x:${o.gid}:\n`, 0o644);
  let seccompFile: string | undefined;
  if (o.seccomp.byteLength > 0) {
    if (o.seccomp.byteLength % 8 !== 0) throw new AgentError("E_EXEC_INVALID", `The seccomp program is ${o.seccomp.byteLength} bytes, not a whole number of 8-byte BPF instructions.`);
    seccompFile = join(stateDir, "seccomp.bpf");
    atomicWrite(seccompFile, o.seccomp, 0o600);
  }
  return { passwdFile, groupFile, seccompFile };
}

/** Create the writable areas and hand them to the sandbox user (tmp stays world-writable with the sticky bit). */
export function prepareAreas(areas: FileAreas, uid: number, gid: number): void {
  mkdirSync(areas.workspace, { recursive: true });
  mkdirSync(areas.tmp, { recursive: true });
  if (process.getuid?.() === 0) chownSync(areas.workspace, uid, gid);
  chmodSync(areas.tmp, 0o1777);
}

/** Map a sandbox cwd to the guest path when it is under a writable area (they may live elsewhere, e.g. in tests). */
export function mapCwd(cwd: string, areas: FileAreas): string {
  const norm = posix.normalize(cwd);
  for (const [area, local] of [["/workspace", areas.workspace], ["/tmp", areas.tmp]] as const) {
    if (norm === area) return local;
    if (norm.startsWith(`${area}/`)) return posix.join(local, norm.slice(area.length + 1));
  }
  return norm;
}

/** The launch of `argv` under the current settings. */
export function launchFor(s: ExecSettings, areas: FileAreas, o: { argv: string[]; env: Record<string, string>; cwd: string; cgroupProcs: string | undefined }): Launch {
  const chain: string[] = [];
  if (o.cgroupProcs) chain.push("/bin/sh", "-c", ENTER_SCRIPT, "luminaguard-enter-cgroup", o.cgroupProcs);
  const dropPrivileges = process.getuid?.() === 0 && (s.uid !== 0 || s.gid !== 0);
  if (dropPrivileges || s.confine === "bwrap") {
    chain.push(findProgram("setpriv"), `--reuid=${s.uid}`, `--regid=${s.gid}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--");
  }
  if (s.confine === "none") {
    return { argv: [...chain, ...o.argv], cwd: mapCwd(o.cwd, areas), env: o.env, seccompFile: undefined, exitCodeEncodesSignal: false };
  }
  const resolv = !s.unshareNet && existsSync("/etc/resolv.conf") ? [["/etc/resolv.conf", "/etc/resolv.conf"] as [string, string]] : [];
  const inner = bwrapArgs({
    id: s.hostname,
    uid: s.uid,
    gid: s.gid,
    view: hostView(),
    passwdFile: s.passwdFile,
    groupFile: s.groupFile,
    workspaceDir: areas.workspace,
    tmpDir: areas.tmp,
    unshareNet: s.unshareNet,
    extraRoBinds: resolv,
    seccompFd: s.seccompFile ? 3 : undefined,
    env: o.env,
    cwd: o.cwd,
    argv: o.argv,
  });
  return {
    argv: [...chain, findProgram("bwrap"), ...inner],
    cwd: "/",
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
    seccompFile: s.seccompFile,
    exitCodeEncodesSignal: true,
  };
}

function atomicWrite(path: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}
