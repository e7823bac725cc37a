/**
 * A backend's firewall and egress proxy, made on its first networked sandbox.
 * Loaded lazily: most sandboxes have no network, and every CLI start would pay
 * for loading the firewall. One given by the caller is the caller's to close.
 */
import type { SandboxNetworking } from "./network.js";

export class LazyNetworking {
  private net: Promise<SandboxNetworking> | undefined;

  constructor(private readonly given?: SandboxNetworking) {
    this.net = given && Promise.resolve(given);
  }

  get(): Promise<SandboxNetworking> {
    this.net ??= import("./network.js").then((m) => new m.SandboxNetworking());
    return this.net;
  }

  /** Stop the proxy and the firewall's helpers we made (after every sandbox released its network). */
  async close(): Promise<void> {
    if (!this.given) await (await this.net)?.close();
  }
}
