/**
 * The read-only slice of the host a namespace sandbox sees. Deliberately small:
 * system binaries and libraries, and the few /etc files that programs need to
 * start (dynamic loader cache, TLS roots, time zone). No /root, /home, host /tmp,
 * /run or /var (where daemon sockets live), no /sys, no /etc/shadow.
 */
import { existsSync, lstatSync, readlinkSync } from "node:fs";

/** Top-level system folders; on merged-/usr hosts most are symlinks into /usr. */
const SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/** /etc entries needed by ordinary programs; each is optional. */
const ETC_ENTRIES = [
  "/etc/ld.so.cache",
  "/etc/ld.so.conf",
  "/etc/ld.so.conf.d",
  "/etc/alternatives",
  "/etc/ssl",
  "/etc/ca-certificates",
  "/etc/localtime",
  "/etc/nsswitch.conf",
  "/etc/hosts",
  "/etc/mime.types",
  "/etc/python3",
  "/etc/python3.11",
  "/etc/python3.12",
  "/etc/python3.13",
];

export type ViewEntry = { kind: "ro-bind"; path: string } | { kind: "symlink"; path: string; target: string };

let cached: ViewEntry[] | undefined;

/** The host paths to expose, resolved once per process. */
export function hostView(): ViewEntry[] {
  if (cached) return cached;
  const out: ViewEntry[] = [];
  for (const path of [...SYSTEM_DIRS, ...ETC_ENTRIES]) {
    if (!existsSync(path)) continue;
    const st = lstatSync(path);
    if (st.isSymbolicLink()) out.push({ kind: "symlink", path, target: readlinkSync(path) });
    else out.push({ kind: "ro-bind", path });
  }
  cached = out;
  return out;
}
