/**
 * One namespace sandbox: a scratch folder (workspace + tmp) on its own bounded
 * disk (scratch-disk.ts), a cgroup that bounds every process of it, and one
 * bubblewrap instance per exec. Execs share the files and the limits, not a
 * process tree, so an exec that dies takes nothing else with it.
 */
import { closeSync, openSync } from "node:fs";
import { rm } from "node:fs/promises";
import type { ExecHandle, ExecOptions, ExecResult, Sandbox, SandboxFiles, SandboxSpec } from "../types.js";
import { SandboxError, sandboxDestroyed } from "../errors.js";
import { startHostProcess } from "../host-process.js";
import { execFiles } from "../exec-files.js";
import { validateExec } from "../exec-validate.js";
import { descendantPids, killQuietly } from "../proc-tree.js";
import { bwrapArgs } from "./bwrap-args.js";
import { formatSize } from "../../config/size.js";
import type { NamespaceHost, SandboxIdentity } from "./host.js";
import type { SandboxNetwork } from "../network.js";
import { enterCgroupArgv, type SandboxCgroup } from "../../policy/limits/index.js";
import { withDiskState, type ScratchDisk } from "../scratch-disk.js";

interface LimitEvents {
  oomKills: number;
  pidsMaxHits: number;
}

export interface NamespaceSandboxParts {
  id: string;
  spec: SandboxSpec;
  host: NamespaceHost;
  identity: SandboxIdentity;
  dir: string;
  workspaceDir: string;
  tmpDir: string;
  /** True when the workspace is the caller's folder, which destroy() must keep. */
  ownWorkspace: boolean;
  /** The size-limited tmpfs mounted on `dir` (or `dir` as it is, unbounded, when not root). */
  disk: ScratchDisk;
  cgroup: SandboxCgroup;
  /** The firewall's network namespace and rules, when the policy is not "none". */
  network: SandboxNetwork | undefined;
  /** The sandbox's /etc/resolv.conf on the host (networked sandboxes only). */
  resolvConf: string | undefined;
}

export class NamespaceSandbox implements Sandbox {
  readonly id: string;
  readonly backend = "namespace" as const;
  readonly spec: SandboxSpec;
  readonly files: SandboxFiles;
  readonly network: SandboxNetwork | undefined;
  private readonly running = new Set<ExecHandle>();
  private lastEvents: LimitEvents = { oomKills: 0, pidsMaxHits: 0 };
  private destroying: Promise<void> | undefined;

  constructor(private readonly parts: NamespaceSandboxParts) {
    this.id = parts.id;
    this.spec = parts.spec;
    this.network = parts.network;
    this.files = execFiles((argv, opts) => this.exec(argv, opts), parts.spec.maxFileBytes);
  }

  get destroyed(): boolean {
    return this.destroying !== undefined;
  }

  exec(argv: string[], opts: ExecOptions = {}): ExecHandle {
    if (this.destroying) {
      throw sandboxDestroyed(this.id);
    }
    validateExec(argv, opts);
    const { host, cgroup, identity } = this.parts;
    const seccompFd = openSync(host.seccompProgram(this.spec.seccomp.level, this.spec.seccomp.mode), "r");
    const inner = bwrapArgs({
      id: this.id,
      uid: identity.uid,
      gid: identity.gid,
      view: host.view,
      passwdFile: identity.passwdFile,
      groupFile: identity.groupFile,
      workspaceDir: this.parts.workspaceDir,
      tmpDir: this.parts.tmpDir,
      unshareNet: this.network === undefined,
      extraRoBinds: [...(this.parts.resolvConf ? [[this.parts.resolvConf, "/etc/resolv.conf"] as [string, string]] : []), ...(this.spec.mounts ?? []).map((m): [string, string] => [m.source, m.target])],
      seccompFd: 3,
      env: { ...this.network?.env(), ...opts.env },
      cwd: opts.cwd ?? "/workspace",
      argv,
    });
    // Into the firewall's network namespace first (needs root), then drop privileges.
    const enterNet = this.network ? [host.nsenterPath(), `--net=${this.network.attachment.netnsPath}`, "--"] : [];
    const launcher = [...enterNet, ...host.dropPrivilegesArgv(identity), host.bwrapPath, ...inner];
    cgroup.allowUnreleasedPids();
    const handle = startHostProcess({
      argv: enterCgroupArgv(cgroup.procsFiles, launcher),
      launcherEnv: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
      extraFds: [seccompFd],
      stdin: opts.stdin,
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
      exitCodeEncodesSignal: true,
      killTree: killBwrapTree,
      annotate: (res) => withDiskState(res, this.parts.disk),
      explain: (res) => this.explainEnding(res),
      onDone: () => this.running.delete(handle),
    });
    // The child holds its own copy of the fd now.
    closeSync(seccompFd);
    this.running.add(handle);
    return handle;
  }

  /** Attribute a failed ending to the sandbox's limits when the cgroup saw them hit. */
  private async explainEnding(res: ExecResult): Promise<SandboxError | undefined> {
    if (res.exitCode === 0) return undefined;
    let now: LimitEvents;
    try {
      now = await this.parts.cgroup.events();
    } catch {
      return undefined; // destroyed meanwhile
    }
    const before = this.lastEvents;
    this.lastEvents = now;
    const { limits } = this.spec;
    if (now.oomKills > before.oomKills) {
      const files = await this.parts.disk.usedBytes().catch(() => 0);
      // tmpfs pages are charged to the sandbox's memory cgroup: say so when files are a real part of it.
      const filesNote = files >= 1024 * 1024 ? ` Files in /tmp and /workspace count toward it (${formatSize(files)} now); delete what is not needed.` : "";
      return new SandboxError("E_OOM", `The sandbox ran out of memory (limit ${formatSize(limits.memoryBytes)}) and the kernel killed the command. Raise the memory limit (--memory) or make the task use less.${filesNote}`, { details: { result: res, limitBytes: limits.memoryBytes, filesBytes: files } });
    }
    if (now.pidsMaxHits > before.pidsMaxHits) {
      return new SandboxError("E_PIDS_LIMIT", `The command hit the sandbox's process limit (${limits.pids}, including the launcher's own 2) and failed; a fork bomb or a very parallel build does this. Raise --pids if the work is legitimate.`, { details: { result: res, limit: limits.pids } });
    }
    return undefined;
  }

  async destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    for (const h of this.running) h.kill("SIGKILL");
    const errors: unknown[] = [];
    await this.parts.cgroup.destroy().catch((e: unknown) => errors.push(e));
    // After the processes are gone: nothing may still use the namespace or the disk.
    await this.network?.release().catch((e: unknown) => errors.push(e));
    await this.parts.disk.release().catch((e: unknown) => errors.push(e));
    // The scratch folder holds tmp (and the workspace unless it is the caller's, which lives elsewhere
    // and is kept); rm never follows the symlinks the sandbox made.
    await rm(this.parts.dir, { recursive: true, force: true, maxRetries: 3 }).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw errors[0];
  }
}

/**
 * SIGKILL goes to bwrap's init inside the namespace: when a pid namespace's init
 * dies the kernel kills every process in it, so nothing forked can escape. Other
 * signals go to the command's processes (the init ignores them by design).
 */
function killBwrapTree(launcherPid: number, signal: NodeJS.Signals): void {
  const tree = descendantPids(launcherPid);
  // tree[0] is bwrap's init (the launcher's only child); the rest is the command's tree.
  if (signal === "SIGKILL") {
    if (tree[0] !== undefined) killQuietly(tree[0], "SIGKILL");
    killQuietly(launcherPid, "SIGKILL");
    return;
  }
  if (tree.length <= 1) killQuietly(launcherPid, signal);
  for (const pid of tree.slice(1)) killQuietly(pid, signal);
}
