/**
 * bubblewrap's command line for one command in a namespace sandbox. Pure: every
 * input is explicit, so unit tests pin the exact isolation flags.
 */
import type { ViewEntry } from "./host-view.js";

export interface BwrapInput {
  id: string;
  /** uid/gid the command runs as inside (mapped to the same ids outside). */
  uid: number;
  gid: number;
  view: ViewEntry[];
  /** Synthetic /etc/passwd and /etc/group naming the sandbox user. */
  passwdFile: string;
  groupFile: string;
  /** Host folders bound read-write. */
  workspaceDir: string;
  tmpDir: string;
  /** When false the command shares the caller's network namespace (the firewall put it in one). */
  unshareNet: boolean;
  /** Extra host files bound read-only: [host path, sandbox path] (e.g. the sandbox's resolv.conf). */
  extraRoBinds?: [string, string][];
  /** fd number of a compiled seccomp program, or undefined for none. */
  seccompFd: number | undefined;
  env: Record<string, string>;
  cwd: string;
  argv: string[];
}

export const DEFAULT_ENV: Record<string, string> = {
  PATH: "/usr/local/bin:/usr/bin:/bin",
  HOME: "/workspace",
  LANG: "C.UTF-8",
  TMPDIR: "/tmp",
};

/** The bwrap arguments (without the bwrap binary itself). */
export function bwrapArgs(input: BwrapInput): string[] {
  const a: string[] = [
    "--unshare-user",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    ...(input.unshareNet ? ["--unshare-net"] : []),
    // Nested user namespaces are the usual first step of kernel exploits; seccomp blocks unshare/clone flags too.
    "--disable-userns",
    "--uid", String(input.uid),
    "--gid", String(input.gid),
    "--hostname", input.id,
    // Kill the sandbox if we die; setsid so it cannot push keystrokes into our terminal (TIOCSTI).
    "--die-with-parent",
    "--new-session",
  ];
  for (const entry of input.view) {
    if (entry.kind === "symlink") a.push("--symlink", entry.target, entry.path);
    else a.push("--ro-bind", entry.path, entry.path);
  }
  a.push(
    "--ro-bind", input.passwdFile, "/etc/passwd",
    "--ro-bind", input.groupFile, "/etc/group",
    ...(input.extraRoBinds ?? []).flatMap(([from, to]) => ["--ro-bind", from, to]),
    "--proc", "/proc",
    "--dev", "/dev",
    "--bind", input.tmpDir, "/tmp",
    "--bind", input.workspaceDir, "/workspace",
    // bwrap made /etc and other mount points in its root tmpfs as the sandbox user; freeze them.
    "--remount-ro", "/",
    "--chdir", input.cwd,
    "--clearenv",
  );
  for (const [k, v] of Object.entries({ ...DEFAULT_ENV, ...input.env })) a.push("--setenv", k, v);
  if (input.seccompFd !== undefined) a.push("--seccomp", String(input.seccompFd));
  a.push("--", ...input.argv);
  return a;
}
