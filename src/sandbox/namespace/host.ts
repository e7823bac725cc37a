/**
 * Host-side facts and files shared by every namespace sandbox of this process:
 * which bwrap to run, as which user, the read-only host view, the synthetic
 * passwd/group files and the compiled seccomp programs. Built once, on first use.
 */
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hostView, type ViewEntry } from "./host-view.js";
import { runtimeDir } from "../../config/paths.js";
import { compileProfile, type SeccompLevel, type SeccompMode } from "../../policy/seccomp/index.js";
import { SandboxError } from "../errors.js";

/** The unprivileged host uid sandboxes run as when LuminaGuard itself runs as root. */
const DEFAULT_SANDBOX_UID = 65534;

/** The host user a sandbox runs as, and the passwd/group files that name it inside. */
export interface SandboxIdentity {
  uid: number;
  gid: number;
  passwdFile: string;
  groupFile: string;
}

export class NamespaceHost {
  readonly bwrapPath: string;
  readonly sandboxUid: number;
  readonly sandboxGid: number;
  readonly view: ViewEntry[];
  readonly dir: string;
  readonly sandboxesDir: string;
  private readonly identities = new Map<string, SandboxIdentity>();
  private readonly programs = new Map<string, string>();
  private nsenter: string | undefined;
  private readonly runAsRoot: boolean;

  constructor(opts: { sandboxUid?: number | undefined } = {}) {
    this.bwrapPath = findExecutable("bwrap");
    this.runAsRoot = process.getuid?.() === 0;
    this.sandboxUid = this.runAsRoot ? (opts.sandboxUid ?? DEFAULT_SANDBOX_UID) : process.getuid!();
    this.sandboxGid = this.runAsRoot ? this.sandboxUid : process.getgid!();
    if (this.runAsRoot && this.sandboxUid === 0) {
      throw new SandboxError("E_BACKEND_UNAVAILABLE", "Refusing to run sandboxes as uid 0: with host root's uid they could read root-owned files. Set sandbox.uid to an unused unprivileged uid.");
    }
    this.view = hostView();
    this.dir = runtimeDir();
    this.sandboxesDir = join(this.dir, "sandboxes");
    // 0711: the sandbox user must traverse to its own folders but list nothing.
    mkdirSync(this.sandboxesDir, { recursive: true, mode: 0o711 });
    chmodSync(this.dir, 0o711);
    chmodSync(this.sandboxesDir, 0o711);
  }

  /**
   * Who a sandbox runs as: the default sandbox user, or (when we are root and the
   * caller's workspace belongs to an ordinary user) that folder's owner, so the
   * sandbox can write its workspace and what it writes stays the user's.
   * The synthetic /etc/passwd and /etc/group name that user; written once per uid.
   */
  identity(owner?: { uid: number; gid: number }): SandboxIdentity {
    const uid = this.runAsRoot && owner && owner.uid !== 0 ? owner.uid : this.sandboxUid;
    const gid = uid === this.sandboxUid ? this.sandboxGid : owner!.gid;
    const key = `${uid}:${gid}`;
    let id = this.identities.get(key);
    if (!id) {
      const passwdFile = join(this.dir, `passwd-${uid}-${gid}`);
      const groupFile = join(this.dir, `group-${uid}-${gid}`);
      writeShared(passwdFile, `root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nsandbox:x:${uid}:${gid}:LuminaGuard sandbox:/workspace:/bin/sh\n`, 0o644);
      writeShared(groupFile, `root:x:0:\nsandbox:x:${gid}:\n`, 0o644);
      id = { uid, gid, passwdFile, groupFile };
      this.identities.set(key, id);
    }
    return id;
  }

  /** The argv prefix that drops from root to the sandbox user before bwrap runs. */
  dropPrivilegesArgv(id: SandboxIdentity = this.identity()): string[] {
    if (!this.runAsRoot) return [];
    return ["setpriv", `--reuid=${id.uid}`, `--regid=${id.gid}`, "--clear-groups"];
  }

  /** util-linux nsenter, which puts the launcher into a sandbox's network namespace. */
  nsenterPath(): string {
    this.nsenter ??= findExecutable("nsenter");
    return this.nsenter;
  }

  /** Whether folders we create for a sandbox must be handed to the sandbox user. */
  get chownScratch(): boolean {
    return this.runAsRoot;
  }

  /** Path of the compiled BPF program for a level and mode, compiled on first use. */
  seccompProgram(level: SeccompLevel, mode: SeccompMode): string {
    const key = `${level}-${mode}`;
    let path = this.programs.get(key);
    if (!path) {
      path = join(this.dir, `seccomp-${key}.bpf`);
      writeShared(path, compileProfile({ level, mode }), 0o600);
      this.programs.set(key, path);
    }
    return path;
  }
}

/** Absolute path of a program on the usual system PATH, or a typed error saying how to install it. */
export function findExecutable(name: string): string {
  for (const dir of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new SandboxError("E_BACKEND_UNAVAILABLE", `${name} is not installed; the namespace sandbox needs it. On Debian/Ubuntu: sudo apt-get install bubblewrap (or run \`make demo\`, which installs it).`);
}

/** Run bwrap once with the sandbox's namespaces and explain a failure in plain words. */
export function probeUserNamespaces(host: NamespaceHost): Promise<void> {
  const argv = [...host.dropPrivilegesArgv(), host.bwrapPath, "--unshare-user", "--unshare-pid", "--unshare-net", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"];
  return new Promise((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err) reject(userNamespaceError(String(stderr).trim(), err));
      else resolve();
    });
  });
}

/**
 * probeUserNamespaces, remembered until the next reboot: the answer depends on
 * kernel settings that rarely change while the machine runs, and the probe costs
 * a whole sandbox start (~40 ms) on every CLI call otherwise.
 */
export async function probeUserNamespacesCached(host: NamespaceHost): Promise<void> {
  const marker = join(host.dir, "userns-ok");
  const key = `${bootId()} ${host.bwrapPath} ${host.sandboxUid}`;
  try {
    if (readFileSync(marker, "utf8") === key) return;
  } catch {
    // no marker yet
  }
  await probeUserNamespaces(host);
  writeShared(marker, key, 0o600);
}

function bootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "unknown-boot";
  }
}

/** Map bwrap's raw complaint about namespaces to what is missing and how to fix it. */
export function userNamespaceError(stderr: string, cause?: unknown): SandboxError {
  if (/No permissions to creat|Operation not permitted|setting up uid map|Permission denied|No space left on device|Invalid argument/i.test(stderr)) {
    return new SandboxError(
      "E_USERNS_BLOCKED",
      "This host does not let unprivileged processes create user namespaces, which the namespace sandbox needs. " +
        "Fix one of: `sysctl -w kernel.unprivileged_userns_clone=1` (Debian), `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 24.04+), " +
        "`sysctl -w user.max_user_namespaces=15000`; inside Docker, run the container with --security-opt seccomp=unconfined --security-opt apparmor=unconfined. " +
        `(bwrap said: ${stderr || "nothing"})`,
      { cause },
    );
  }
  return new SandboxError("E_BACKEND_UNAVAILABLE", `bubblewrap could not start a sandbox: ${stderr || String(cause)}. Run \`luminaguard doctor\` for details.`, { cause });
}

/**
 * Write a file that other LuminaGuard processes may be reading right now (the
 * runtime folder is shared): write a private temp file and rename it over, so a
 * concurrent bwrap never opens a half-written seccomp program or passwd file.
 * Skipped when the content is already there.
 */
function writeShared(path: string, data: string | Uint8Array, mode: number): void {
  try {
    if (Buffer.from(data).equals(readFileSync(path))) return;
  } catch {
    // missing: write it
  }
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}
