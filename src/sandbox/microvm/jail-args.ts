/**
 * bubblewrap's command line that jails one QEMU process, the way Firecracker's
 * jailer does for Firecracker: fresh mount, pid, ipc, uts and cgroup namespaces,
 * a read-only root holding only what QEMU needs, and an unprivileged uid. Pure,
 * so unit tests pin every flag.
 *
 * Two modes:
 * - `root` (we are root): bwrap runs privileged, so it can bind files only root
 *   may read (guest images under /root), and needs no user namespace, which
 *   keeps that large kernel surface away from QEMU. Inside, setpriv drops to
 *   the sandbox uid with no capabilities, an empty bounding set and no_new_privs
 *   before exec'ing QEMU. bwrap keeps only the three capabilities setpriv needs.
 * - `user` (we are not root): bwrap makes a user namespace mapping our own uid
 *   and forbids nested ones; QEMU runs as us.
 * Either way QEMU is pid 2 of its pid namespace under bwrap's init, and every
 * host path keeps its own path inside, so the socket paths in QEMU's argv mean
 * the same thing on both sides.
 *
 * Not `--as-pid-1`: measured, a QEMU that is the namespace's init after
 * setpriv's uid change survives bwrap's death (the parent-death signal does not
 * reach it), while bwrap's own init dies with its parent and takes the whole
 * namespace with it. So a LuminaGuard killed with SIGKILL leaves no QEMU behind.
 */
import { dirname } from "node:path";

/** One system folder of the read-only view: bound as is, or a symlink (merged /usr). */
export type JailViewEntry = { kind: "ro-bind"; path: string } | { kind: "symlink"; path: string; target: string };

export interface JailInput {
  mode: "root" | "user";
  /** The uid/gid QEMU runs as (in `user` mode: our own). */
  uid: number;
  gid: number;
  /** Host name inside (the VM id). */
  hostname: string;
  /** System folders: /usr and the merged-/usr symlinks, ld.so.cache. */
  view: JailViewEntry[];
  /** Files QEMU reads: kernel, initrd, root image. */
  readOnly: string[];
  /** Paths QEMU writes: its VM folder, the template RAM file. */
  readWrite: string[];
  /** Devices QEMU opens (/dev/kvm with KVM, /dev/net/tun with a tap by name): a host path, or [host node, path inside]. */
  devices: (string | [string, string])[];
  /** False when QEMU must stay in the caller's network namespace (it opens a tap there). */
  unshareNet: boolean;
  /** fd number of a compiled seccomp program bwrap installs before exec, or undefined. */
  seccompFd: number | undefined;
  /** QEMU's argv, binary first. */
  argv: string[];
}

/** Where setpriv is inside the jail (from the bound /usr). */
export const SETPRIV = "/usr/bin/setpriv";

/** The bwrap arguments (without the bwrap binary itself). */
export function jailArgs(input: JailInput): string[] {
  const a: string[] = [];
  if (input.mode === "user") a.push("--unshare-user", "--disable-userns", "--uid", String(input.uid), "--gid", String(input.gid));
  a.push("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try");
  if (input.unshareNet) a.push("--unshare-net");
  a.push(
    "--hostname", input.hostname,
    // Die with us (and the namespace with bwrap's init), no controlling terminal (TIOCSTI).
    "--die-with-parent", "--new-session",
  );
  if (input.mode === "root") a.push("--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP");
  for (const e of input.view) {
    if (e.kind === "symlink") a.push("--symlink", e.target, e.path);
    else a.push("--ro-bind", e.path, e.path);
  }
  a.push("--dev", "/dev");
  // bwrap makes missing mount points 0700 root: open them up, or uid 65534 could not reach its files.
  const made = new Set<string>();
  for (const dev of input.devices) {
    const [from, to] = typeof dev === "string" ? [dev, dev] : dev;
    for (const dir of ancestors(to)) {
      if (dir === "/dev" || made.has(dir)) continue;
      made.add(dir);
      a.push("--perms", "0755", "--dir", dir);
    }
    a.push("--dev-bind", from, to);
  }
  const bound = input.view.map((e) => e.path);
  for (const path of [...input.readOnly, ...input.readWrite]) {
    for (const dir of ancestors(path)) {
      if (made.has(dir) || dir === "/dev" || dir.startsWith("/dev/") || bound.some((b) => dir === b || dir.startsWith(`${b}/`))) continue;
      made.add(dir);
      a.push("--perms", "0755", "--dir", dir);
    }
  }
  for (const path of input.readOnly) a.push("--ro-bind", path, path);
  for (const path of input.readWrite) a.push("--bind", path, path);
  a.push("--remount-ro", "/", "--chdir", "/", "--clearenv");
  if (input.seccompFd !== undefined) a.push("--seccomp", String(input.seccompFd));
  a.push("--");
  if (input.mode === "root") {
    a.push(SETPRIV, `--reuid=${input.uid}`, `--regid=${input.gid}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--");
  }
  a.push(...input.argv);
  return a;
}

/** "/a/b/c" → ["/a", "/a/b"] (parents, outermost first, without "/"). */
function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let d = dirname(path); d !== "/" && d !== "."; d = dirname(d)) out.unshift(d);
  return out;
}
