/** The hardened Linux-namespace backend: bubblewrap + seccomp + cgroup limits. */
import { chown, mkdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Backend, Sandbox, SandboxSpec } from "../types.js";
import { SandboxError } from "../errors.js";
import { newSandboxId } from "../ids.js";
import { NamespaceHost, probeUserNamespacesCached } from "./host.js";
import { NamespaceSandbox } from "./sandbox.js";
import { createSandboxCgroup } from "../../policy/limits/index.js";

export interface NamespaceBackendOptions {
  /** Host uid sandboxes run as when we are root (default 65534). */
  sandboxUid?: number;
}

export class NamespaceBackend implements Backend {
  readonly name = "namespace" as const;
  private hostInstance: NamespaceHost | undefined;
  private checked: Promise<void> | undefined;

  constructor(private readonly opts: NamespaceBackendOptions = {}) {}

  private get host(): NamespaceHost {
    this.hostInstance ??= new NamespaceHost({ sandboxUid: this.opts.sandboxUid });
    return this.hostInstance;
  }

  /** Verify once that bwrap exists and user namespaces work here. */
  check(): Promise<void> {
    this.checked ??= Promise.resolve().then(() => probeUserNamespacesCached(this.host));
    // A failed probe is retried on the next call (the admin may have fixed the host).
    this.checked.catch(() => (this.checked = undefined));
    return this.checked;
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    if (spec.network !== "none") {
      throw new SandboxError("E_BACKEND_UNAVAILABLE", "Network policies other than \"none\" need the egress firewall, which this build does not have yet.");
    }
    await this.check();
    const host = this.host;
    const id = newSandboxId();
    const dir = join(host.sandboxesDir, id);
    const tmpDir = join(dir, "tmp");
    const ownWorkspace = spec.workspace !== undefined;
    const workspaceDir = ownWorkspace ? resolve(spec.workspace!) : join(dir, "workspace");
    await mkdir(dir, { mode: 0o711 });
    try {
      await Promise.all([mkdir(tmpDir, { mode: 0o700 }), ownWorkspace ? Promise.resolve() : mkdir(workspaceDir, { mode: 0o700 })]);
      if (host.chownScratch) {
        await Promise.all([chown(tmpDir, host.sandboxUid, host.sandboxGid), ownWorkspace ? Promise.resolve() : chown(workspaceDir, host.sandboxUid, host.sandboxGid)]);
      }
      const cgroup = await createSandboxCgroup(id, spec.limits);
      return new NamespaceSandbox({ id, spec, host, dir, workspaceDir, tmpDir, ownWorkspace, cgroup });
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }
}
