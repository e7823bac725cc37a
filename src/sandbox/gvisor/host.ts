/**
 * Host-side facts shared by every gVisor sandbox of this process: which runsc,
 * rootless or not, as which user sandboxes run, the read-only host view, the
 * launcher script and the compiled seccomp programs, and where state lives:
 *
 *   <runtime>/gvisor/pid-<pid>-<starttime>/state/    runsc --root (only our containers)
 *   <runtime>/gvisor/pid-<pid>-<starttime>/<sb-id>/   one sandbox: bundle, workspace, tmp, control
 *
 * Grouping by owner process (as namespace scratch folders and our cgroups are)
 * lets a later process sweep what a crashed one left without touching a live
 * neighbour's sandboxes.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { runtimeDir } from "../../config/paths.js";
import { compileProfile, hostArch, type SeccompLevel, type SeccompMode } from "../../policy/seccomp/index.js";
import { hostView, type ViewEntry } from "../namespace/host-view.js";
import { ownScratchDir, removeAtExitIfEmpty } from "../namespace/scratch.js";
import { SandboxError } from "../errors.js";
import { launcherScript, PERL_PATH } from "./launcher.js";
import { findRunsc, type RunscConfig } from "./runsc.js";

/** The unprivileged uid sandboxes run as when LuminaGuard runs as root. */
const DEFAULT_SANDBOX_UID = 65534;

export interface SandboxIdentity {
  uid: number;
  gid: number;
}

export class GvisorHost {
  readonly runscPath: string;
  readonly rootless: boolean;
  readonly sandboxUid: number;
  readonly sandboxGid: number;
  readonly view: ViewEntry[];
  /** `<runtime>/gvisor`: one folder per owner process below it. */
  readonly baseDir: string;
  readonly launcher: string;
  private readonly programs = new Map<string, Buffer>();
  private ownDir: Promise<string> | undefined;

  constructor(opts: { sandboxUid?: number | undefined } = {}) {
    this.runscPath = findRunsc();
    if (!existsSync(PERL_PATH)) {
      throw new SandboxError("E_BACKEND_UNAVAILABLE", `${PERL_PATH} is missing; the gVisor backend runs its in-sandbox launcher with it. Install it: apt-get install perl-base.`);
    }
    const root = process.getuid?.() === 0;
    this.rootless = !root;
    this.sandboxUid = root ? (opts.sandboxUid ?? DEFAULT_SANDBOX_UID) : process.getuid!();
    this.sandboxGid = root ? this.sandboxUid : process.getgid!();
    if (root && this.sandboxUid === 0) {
      throw new SandboxError("E_BACKEND_UNAVAILABLE", "Refusing to run sandboxes as uid 0: set sandbox.uid to an unused unprivileged uid.");
    }
    this.view = hostView();
    this.launcher = launcherScript(hostArch());
    this.baseDir = join(runtimeDir(), "gvisor");
    mkdirSync(this.baseDir, { recursive: true, mode: 0o711 });
  }

  /** This process's folder (created once): sandboxes and the runsc state root live under it. */
  ownerDir(): Promise<string> {
    this.ownDir ??= ownScratchDir(this.baseDir).then((dir) => {
      mkdirSync(join(dir, "state"), { recursive: true, mode: 0o700 });
      // The owner folder's own exit hook runs first and finds state/ in it: remove both here.
      removeAtExitIfEmpty(join(dir, "state"), dir);
      return dir;
    });
    return this.ownDir;
  }

  /** runsc flags for this process's containers. */
  async runsc(): Promise<RunscConfig> {
    return { path: this.runscPath, root: join(await this.ownerDir(), "state"), rootless: this.rootless };
  }

  /**
   * Who a sandbox's commands run as: the sandbox user, or (when we are root and
   * the caller's workspace belongs to an ordinary user) that folder's owner, so
   * the sandbox can write its workspace and what it writes stays the user's.
   */
  identity(owner?: { uid: number; gid: number }): SandboxIdentity {
    if (!this.rootless && owner && owner.uid !== 0) return { uid: owner.uid, gid: owner.gid };
    return { uid: this.sandboxUid, gid: this.sandboxGid };
  }

  /** Whether folders made for a sandbox must be handed to the sandbox user. */
  get chownScratch(): boolean {
    return !this.rootless;
  }

  /** The compiled BPF program for a level and mode (compiled once per process). */
  seccompProgram(level: SeccompLevel, mode: SeccompMode): Buffer {
    const key = `${level}-${mode}`;
    let prog = this.programs.get(key);
    if (!prog) {
      prog = compileProfile({ level, mode });
      this.programs.set(key, prog);
    }
    return prog;
  }
}

/** /etc/passwd and /etc/group inside: root and the sandbox user, nobody else. */
export function passwdFiles(id: SandboxIdentity): { passwd: string; group: string } {
  return {
    passwd: `root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nsandbox:x:${id.uid}:${id.gid}:LuminaGuard sandbox:/workspace:/bin/sh\n`,
    group: `root:x:0:\nsandbox:x:${id.gid}:\n`,
  };
}
