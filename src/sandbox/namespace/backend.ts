/** The hardened Linux-namespace backend: bubblewrap + seccomp + cgroup limits. */
import { chown, mkdir, rm, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Backend, Sandbox, SandboxSpec } from "../types.js";
import { SandboxError } from "../errors.js";
import { checkMounts, checkSearchable } from "../mounts.js";
import { newSandboxId } from "../ids.js";
import { NamespaceHost, probeUserNamespacesCached } from "./host.js";
import { NamespaceSandbox } from "./sandbox.js";
import { createSandboxCgroup, sweepStaleCgroups } from "../../policy/limits/index.js";
import { ownScratchDir, sweepStaleScratch } from "./scratch.js";
import type { SandboxNetworking } from "../network.js";
import { LazyNetworking } from "../lazy-networking.js";
import type { NetworkRules } from "../../policy/firewall/policy.js";
import { mountScratchDisk, type ScratchDisk } from "../scratch-disk.js";

export interface NamespaceBackendOptions {
  /** Host uid sandboxes run as when we are root (default 65534). */
  sandboxUid?: number;
  /** Networking for sandboxes whose policy is not "none" (default: one made on first use). */
  networking?: SandboxNetworking;
}

export class NamespaceBackend implements Backend {
  readonly name = "namespace" as const;
  private hostInstance: NamespaceHost | undefined;
  private checked: Promise<void> | undefined;

  private readonly lazyNet: LazyNetworking;

  constructor(private readonly opts: NamespaceBackendOptions = {}) {
    this.lazyNet = new LazyNetworking(opts.networking);
  }

  /**
   * The firewall and egress proxy, made on the first networked sandbox. Loaded
   * lazily: most sandboxes have no network, and every CLI start would pay for it.
   */
  networking(): Promise<SandboxNetworking> {
    return this.lazyNet.get();
  }

  /** Stop the networking helpers (the proxy, the firewall's helper shells); sandboxes must be destroyed first. */
  async close(): Promise<void> {
    await this.lazyNet.close();
  }

  private get host(): NamespaceHost {
    this.hostInstance ??= new NamespaceHost({ sandboxUid: this.opts.sandboxUid });
    return this.hostInstance;
  }

  /**
   * Verify once that bwrap exists and user namespaces work here, and remove what
   * crashed earlier processes left behind (their cgroups, scratch disks and folders).
   */
  check(): Promise<void> {
    this.checked ??= Promise.resolve().then(async () => {
      await probeUserNamespacesCached(this.host);
      await Promise.all([sweepStaleCgroups(), sweepStaleScratch(this.host.sandboxesDir)]);
    });
    // A failed probe is retried on the next call (the admin may have fixed the host).
    this.checked.catch(() => (this.checked = undefined));
    return this.checked;
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    await this.check();
    const owner = spec.workspace !== undefined ? await checkWorkspace(spec.workspace) : undefined;
    const host = this.host;
    const identity = host.identity(owner);
    if (spec.workspace !== undefined) await checkSearchable(resolve(spec.workspace), identity, "workspace", "E_WORKSPACE");
    await checkMounts(spec.mounts, identity);
    const id = newSandboxId();
    const dir = join(await ownScratchDir(host.sandboxesDir), id);
    const tmpDir = join(dir, "tmp");
    const ownWorkspace = spec.workspace !== undefined;
    const workspaceDir = ownWorkspace ? resolve(spec.workspace!) : join(dir, "workspace");
    await mkdir(dir, { mode: 0o711 });
    let disk: ScratchDisk | undefined;
    try {
      // The disk (mount, then the folders on it), the cgroup and the network are independent: set them up at once.
      const scratch = mountScratchDisk(dir, id, spec.limits.diskBytes).then(async (d) => {
        disk = d;
        await Promise.all([mkdir(tmpDir, { mode: 0o700 }), ownWorkspace ? Promise.resolve() : mkdir(workspaceDir, { mode: 0o700 })]);
        if (host.chownScratch) {
          await Promise.all([chown(tmpDir, identity.uid, identity.gid), ownWorkspace ? Promise.resolve() : chown(workspaceDir, identity.uid, identity.gid)]);
        }
      });
      const [folders, cgroup, network] = await Promise.allSettled([scratch, createSandboxCgroup(id, spec.limits), spec.network === "none" ? undefined : this.networking().then((n) => n.attach(id, spec.network as NetworkRules))]);
      if (folders.status === "rejected" || cgroup.status === "rejected" || network.status === "rejected") {
        if (cgroup.status === "fulfilled") await cgroup.value.destroy().catch(() => undefined);
        if (network.status === "fulfilled") await network.value?.release().catch(() => undefined);
        throw [folders, cgroup, network].find((r): r is PromiseRejectedResult => r.status === "rejected")!.reason;
      }
      let resolvConf: string | undefined;
      if (network.value) {
        resolvConf = join(dir, "resolv.conf");
        await writeFile(resolvConf, network.value.resolvConf(), { mode: 0o644 });
      }
      return new NamespaceSandbox({ id, spec, host, identity, dir, workspaceDir, tmpDir, ownWorkspace, disk: disk!, cgroup: cgroup.value, network: network.value, resolvConf });
    } catch (err) {
      // Unmount before removing: rm cannot remove a mount point, and would empty the tmpfs for nothing.
      await (disk as ScratchDisk | undefined)?.release().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }
}

/** A caller's workspace must be an existing folder (bwrap's own error would be cryptic); returns its owner. */
async function checkWorkspace(path: string): Promise<{ uid: number; gid: number }> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new SandboxError("E_WORKSPACE", `The workspace ${path} is not an existing folder; create it first or leave --workspace out for a fresh empty one.`, { details: { path } });
  }
  return { uid: st.uid, gid: st.gid };
}
