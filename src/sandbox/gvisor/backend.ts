/**
 * The gVisor backend: each sandbox is one long-lived runsc container whose
 * first process is a reaper, and each command is one `runsc exec` of the
 * launcher (launcher.ts) inside it.
 *
 * Why this design, measured on the project's CI machine kind (2 cores, nested
 * virtualization, Debian's runsc 20221219 on the ptrace platform; no /dev/kvm),
 * medians on a busy host:
 *   (a) container + `runsc exec` per command: sandbox start ~0.55 s once; then
 *       `exec true` ~0.35 s (bare `runsc exec true` ~0.08 s; the launcher's perl
 *       start and two forks are the rest: a fork costs ~30-40 ms under ptrace);
 *   (b) `runsc do` / `runsc run` per command over a persistent folder: ~0.6 s for
 *       every command, and no kernel (pipes, /tmp, processes) shared between execs;
 *   (c) one sub-container per command in a pod: create + start ~0.5 s per command.
 * (a) is the fastest per command and keeps one kernel per sandbox, so files,
 * /tmp and limits are shared by execs exactly as the contract says; the
 * launcher gives each exec what `runsc exec` lacks (see launcher.ts).
 * Spawn to first result: ~0.96 s (namespace backend ~0.1 s in the same run).
 * An idle sandbox holds ~21 MiB in its cgroup (sentry + gofer PSS ~36 MiB).
 *
 * The sandbox runs in a cgroup of its own (policy/limits): memory and CPU bound
 * the whole sentry (an OOM kills the sandbox: E_OOM, then E_SANDBOX_CRASHED);
 * processes are bounded inside by RLIMIT_NPROC (the host's pids count the
 * sentry's threads, not the sandbox's processes). A networked sandbox's sentry
 * joins the firewall's network namespace (named in the spec) with --network=host:
 * runsc's netstack mode (--network=sandbox) refuses a namespace path unless runsc
 * itself runs inside it, which would bind its control socket there and force
 * every later runsc call through nsenter. The traffic leaves by the sandbox's
 * veth either way, where the firewall's host-side rules apply.
 */
import { chown, mkdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Backend, CgroupLimits, Sandbox, SandboxSpec } from "../types.js";
import { SandboxError } from "../errors.js";
import { checkMounts } from "../mounts.js";
import { newSandboxId } from "../ids.js";
import { createSandboxCgroup, enterCgroupArgv, sweepStaleCgroups, type SandboxCgroup } from "../../policy/limits/index.js";
import type { SandboxNetwork, SandboxNetworking } from "../network.js";
import { LazyNetworking } from "../lazy-networking.js";
import type { NetworkRules } from "../../policy/firewall/policy.js";
import { GvisorHost, passwdFiles, type SandboxIdentity } from "./host.js";
import { GvisorSandbox } from "./sandbox.js";
import { initArgv } from "./launcher.js";
import { ROOTFS, ociSpec, rootfsSkeleton } from "./oci-spec.js";
import { globalArgs, runDetaching, runRunsc, runscComplaint, type RunscConfig } from "./runsc.js";
import { sweepStaleGvisor } from "./sweep.js";
import { mountScratchDisk, type ScratchDisk } from "../scratch-disk.js";

export interface GvisorBackendOptions {
  /** Uid sandboxes run as when we are root (default 65534). */
  sandboxUid?: number | undefined;
  /** Networking for sandboxes whose policy is not "none" (default: one made on first use). */
  networking?: SandboxNetworking;
}

/**
 * Host memory the gVisor runtime itself needs on top of the sandbox's limit
 * (sentry, gofer, page tables): without it a small limit would kill the sentry
 * before the command got the memory it was promised.
 */
export const RUNTIME_MEMORY_BYTES = 64 * 1024 * 1024;
/** Host threads and processes per sandbox process (the ptrace platform's stubs), plus the sentry's own. */
const HOST_PIDS_PER_PROCESS = 12;
const HOST_PIDS_BASE = 256;

/** The host cgroup's limits for a sandbox with `limits`: the runtime's own share added. */
export function hostLimits(limits: CgroupLimits): CgroupLimits {
  return { memoryBytes: limits.memoryBytes + RUNTIME_MEMORY_BYTES, pids: HOST_PIDS_BASE + limits.pids * HOST_PIDS_PER_PROCESS, cpus: limits.cpus };
}

export class GvisorBackend implements Backend {
  readonly name = "gvisor" as const;
  private hostInstance: GvisorHost | undefined;
  private checked: Promise<void> | undefined;
  private readonly lazyNet: LazyNetworking;

  constructor(private readonly opts: GvisorBackendOptions = {}) {
    this.lazyNet = new LazyNetworking(opts.networking);
  }

  /** The firewall and egress proxy, made on the first networked sandbox. */
  networking(): Promise<SandboxNetworking> {
    return this.lazyNet.get();
  }

  async close(): Promise<void> {
    await this.lazyNet.close();
  }

  private get host(): GvisorHost {
    this.hostInstance ??= new GvisorHost({ sandboxUid: this.opts.sandboxUid });
    return this.hostInstance;
  }

  /** Verify once that runsc and perl are here, and remove what crashed earlier processes left. */
  check(): Promise<void> {
    this.checked ??= Promise.resolve().then(async () => {
      const host = this.host;
      await Promise.all([sweepStaleGvisor(host.baseDir), sweepStaleCgroups()]);
    });
    this.checked.catch(() => (this.checked = undefined));
    return this.checked;
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    await this.check();
    const host = this.host;
    const owner = spec.workspace !== undefined ? await checkWorkspace(spec.workspace) : undefined;
    const identity = host.identity(owner);
    await checkMounts(spec.mounts, identity);
    const runsc = await host.runsc();
    const id = newSandboxId();
    const dir = join(await host.ownerDir(), id);
    await mkdir(dir, { mode: 0o700 });
    let cgroup: SandboxCgroup | undefined;
    let network: SandboxNetwork | undefined;
    let disk: ScratchDisk | undefined;
    const networkMode = spec.network === "none" ? "none" : "host";
    try {
      // /tmp and a fresh /workspace on one size-limited tmpfs (limits.disk), as on the namespace backend;
      // the gofer writes it from inside the sandbox's cgroup, so its pages count toward the memory limit there too.
      const diskDir = join(dir, "disk");
      await mkdir(diskDir, { mode: 0o711 });
      disk = await mountScratchDisk(diskDir, id, spec.limits.diskBytes);
      const parts = await this.prepare(spec, dir, diskDir, identity);
      const [cg, net] = await Promise.allSettled([
        createSandboxCgroup(id, hostLimits(spec.limits)),
        spec.network === "none" ? undefined : this.networking().then((n) => n.attach(id, spec.network as NetworkRules)),
      ]);
      if (cg.status === "fulfilled") cgroup = cg.value;
      if (net.status === "fulfilled") network = net.value;
      if (cg.status === "rejected") throw cg.reason;
      if (net.status === "rejected") throw net.reason;
      const extraRoFiles: [string, string][] = (spec.mounts ?? []).map((m) => [m.source, m.target]);
      if (network) {
        const resolvConf = join(dir, "resolv.conf");
        await writeFile(resolvConf, network.resolvConf(), { mode: 0o644 });
        extraRoFiles.push([resolvConf, "/etc/resolv.conf"]);
      }
      const bundle = join(dir, "bundle");
      const oci = ociSpec({ id, uid: identity.uid, gid: identity.gid, view: host.view, ...parts, extraRoFiles, netnsPath: network?.attachment.netnsPath, args: initArgv() });
      await writeSkeleton(join(bundle, ROOTFS), rootfsSkeleton(oci, host.view, isDirectory));
      await writeFile(join(bundle, "config.json"), JSON.stringify(oci, null, 1), { mode: 0o600 });
      const sentryPid = await startContainer(runsc, networkMode, cgroup!, id, bundle, join(dir, "sandbox.pid"));
      return new GvisorSandbox({ id, spec, runsc, networkMode, identity, dir, disk, cgroup: cgroup!, network, sentryPid });
    } catch (err) {
      await runRunsc(runsc.path, [...globalArgs(runsc, networkMode), "delete", "--force", id], { timeoutMs: 15_000 });
      await cgroup?.destroy().catch(() => undefined);
      await network?.release().catch(() => undefined);
      // After the sentry and gofer are gone; rm cannot remove a mount point.
      await disk?.release().catch(() => undefined);
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      throw err;
    }
  }

  /** The sandbox's folders (tmp and workspace on `diskDir`) and control files (launcher, seccomp program, passwd/group). */
  private async prepare(spec: SandboxSpec, dir: string, diskDir: string, identity: SandboxIdentity) {
    const host = this.host;
    const workspaceDir = spec.workspace !== undefined ? resolve(spec.workspace) : join(diskDir, "workspace");
    const tmpDir = join(diskDir, "tmp");
    const controlDir = join(dir, "control");
    const etcDir = join(dir, "etc");
    await Promise.all([mkdir(tmpDir, { mode: 0o700 }), mkdir(controlDir, { mode: 0o755 }), mkdir(etcDir, { mode: 0o755 }), spec.workspace === undefined ? mkdir(workspaceDir, { mode: 0o700 }) : undefined]);
    if (host.chownScratch) {
      await Promise.all([chown(tmpDir, identity.uid, identity.gid), spec.workspace === undefined ? chown(workspaceDir, identity.uid, identity.gid) : undefined]);
    }
    const files = passwdFiles(identity);
    const passwdFile = join(etcDir, "passwd");
    const groupFile = join(etcDir, "group");
    await Promise.all([
      writeFile(join(controlDir, "launch.pl"), host.launcher, { mode: 0o644 }),
      writeFile(join(controlDir, "seccomp.bpf"), host.seccompProgram(spec.seccomp.level, spec.seccomp.mode), { mode: 0o644 }),
      writeFile(passwdFile, files.passwd, { mode: 0o644 }),
      writeFile(groupFile, files.group, { mode: 0o644 }),
    ]);
    return { workspaceDir, tmpDir, controlDir, passwdFile, groupFile };
  }
}

/**
 * `runsc run --detach` inside the sandbox's cgroup, so the sentry and gofer it
 * leaves running are bounded from their first instruction. Returns the sentry's
 * host pid. runsc itself stays in our network namespace: its control socket is
 * bound there, and later runsc calls must reach it (the sentry joins the
 * firewall's namespace through the spec).
 */
async function startContainer(runsc: RunscConfig, networkMode: "none" | "host" | "sandbox", cgroup: SandboxCgroup, id: string, bundle: string, pidFile: string): Promise<number> {
  const argv = [runsc.path, ...globalArgs(runsc, networkMode), "run", "--detach", "--bundle", bundle, "--pid-file", pidFile, id];
  const res = await runDetaching(enterCgroupArgv(cgroup.procsFiles, argv), `${pidFile}.log`, { timeoutMs: 60_000 });
  if (res.code !== 0) {
    throw new SandboxError("E_SANDBOX_START", `runsc could not start the gVisor sandbox: ${runscComplaint(res)}. Run \`luminaguard doctor\`; on hosts without ptrace for runsc (some containers), use --backend namespace.`, {
      details: { stderr: res.stderr.slice(-2000) },
    });
  }
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new SandboxError("E_SANDBOX_START", `runsc started sandbox ${id} but wrote no process id to ${pidFile}.`);
  return pid;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

async function writeSkeleton(rootfs: string, skeleton: { dirs: string[]; files: string[]; symlinks: [string, string][] }): Promise<void> {
  await mkdir(rootfs, { recursive: true, mode: 0o755 });
  for (const d of skeleton.dirs) await mkdir(join(rootfs, d), { recursive: true, mode: 0o755 });
  await Promise.all([
    ...skeleton.files.map((f) => writeFile(join(rootfs, f), "", { mode: 0o644 })),
    ...skeleton.symlinks.map(([p, target]) => symlink(target, join(rootfs, p))),
  ]);
}

/** A caller's workspace must be an existing folder; returns its owner. */
async function checkWorkspace(path: string): Promise<{ uid: number; gid: number }> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new SandboxError("E_WORKSPACE", `The workspace ${path} is not an existing folder; create it first or leave --workspace out for a fresh empty one.`, { details: { path } });
  }
  return { uid: st.uid, gid: st.gid };
}
