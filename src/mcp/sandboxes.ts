/**
 * Where stdio MCP servers get their sandboxes: one backend per kind, made on
 * first use and closed with the hub, so no server process outlives the hub.
 */
import type { Backend, BackendName, Sandbox, SandboxSpec } from "../sandbox/types.js";
import { createBackend, type BackendOptions } from "../sandbox/backends.js";

export interface SandboxSource {
  create(spec: SandboxSpec): Promise<Sandbox>;
  close(): Promise<void>;
}

export class BackendSandboxes implements SandboxSource {
  private readonly backends = new Map<BackendName, Promise<Backend>>();

  constructor(private readonly opts: BackendOptions = {}) {}

  async create(spec: SandboxSpec): Promise<Sandbox> {
    let backend = this.backends.get(spec.backend);
    if (!backend) {
      backend = createBackend(spec.backend, this.opts);
      this.backends.set(spec.backend, backend);
      backend.catch(() => this.backends.delete(spec.backend));
    }
    return (await backend).create(spec);
  }

  async close(): Promise<void> {
    const all = [...this.backends.values()];
    this.backends.clear();
    await Promise.all(all.map(async (b) => (await b.catch(() => undefined))?.close?.()));
  }
}
