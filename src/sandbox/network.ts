/**
 * Networking for sandboxes: the glue between a backend and the egress firewall.
 * A networked sandbox gets its own network namespace with default-deny rules
 * (Firewall), and when its policy names domains, a listener of the host-side
 * egress proxy on its veth address that only it can reach. Shared by every
 * backend that runs sandboxes on this host.
 */
import { Firewall, type NetworkAttachment, type FirewallStats } from "../policy/firewall/index.js";
import { EgressProxy, type ProxyCounts } from "../policy/firewall/proxy.js";
import type { NetworkPolicy, NetworkRules } from "../policy/firewall/policy.js";
import { FirewallError } from "../policy/firewall/errors.js";

/** What one sandbox's network looks like to the code that runs commands in it. */
export interface SandboxNetwork {
  readonly attachment: NetworkAttachment;
  /** Proxy variables for commands (HTTP_PROXY, ...) when the policy names domains. */
  env(): Record<string, string>;
  /** /etc/resolv.conf content: the allowed resolvers, or none. */
  resolvConf(): string;
  /** Replace the policy live; new connections follow it at once. */
  update(policy: NetworkPolicy): Promise<void>;
  /** The live nftables rules of this sandbox. */
  rules(): Promise<string>;
  /** Allowed/denied connections by the firewall (IP rules) and the proxy (names). */
  stats(): Promise<{ firewall: FirewallStats; proxy: ProxyCounts }>;
  /** Remove namespace, rules and proxy listener. Idempotent. */
  release(): Promise<void>;
}

/** One per process: a Firewall and an EgressProxy, started on first use. */
export class SandboxNetworking {
  readonly firewall: Firewall;
  private readonly proxy: EgressProxy;
  private ready: Promise<void> | undefined;

  constructor(opts: { firewall?: Firewall; proxy?: EgressProxy } = {}) {
    this.firewall = opts.firewall ?? new Firewall();
    this.proxy = opts.proxy ?? new EgressProxy({ listen: [] });
  }

  /** Check privileges and tools, sweep what crashed processes left, start the proxy. Once. */
  start(): Promise<void> {
    this.ready ??= (async () => {
      await this.firewall.check();
      await this.firewall.sweep();
      await this.proxy.start();
    })();
    this.ready.catch(() => (this.ready = undefined));
    return this.ready;
  }

  /** Give a sandbox its network. Fails closed (E_FIREWALL_*) and leaves nothing behind. */
  async attach(sandboxId: string, policy: NetworkRules): Promise<SandboxNetwork> {
    await this.start();
    const attachment = await this.firewall.attach(sandboxId, policy);
    const net = new AttachedNetwork(attachment, this.proxy, this.firewall.proxyPort);
    try {
      await net.applyProxy(policy);
    } catch (err) {
      await net.release();
      throw err;
    }
    return net;
  }

  /** Allowed/denied counters of every live networked sandbox of this process, for metrics. */
  async stats(): Promise<Record<string, { firewall: FirewallStats; proxy: ProxyCounts }>> {
    const out: Record<string, { firewall: FirewallStats; proxy: ProxyCounts }> = {};
    await Promise.all(
      this.firewall.attachments().map(async (a) => {
        out[a.sandboxId] = { firewall: await a.stats(), proxy: this.proxy.stats(a.sandboxId) };
      }),
    );
    return out;
  }

  /** Stop the proxy and the firewall's helper processes (after every sandbox released). */
  async close(): Promise<void> {
    await this.proxy.close();
    await this.firewall.close();
    this.ready = undefined;
  }
}

class AttachedNetwork implements SandboxNetwork {
  private listening = false;
  private released: Promise<void> | undefined;

  constructor(
    readonly attachment: NetworkAttachment,
    private readonly proxy: EgressProxy,
    private readonly proxyPort: number,
  ) {}

  env(): Record<string, string> {
    if (!this.listening) return {};
    const url = `http://${this.attachment.hostAddress}:${this.proxyPort}`;
    // Both spellings: curl and Python read lowercase, many Go and Node tools uppercase.
    return { HTTP_PROXY: url, HTTPS_PROXY: url, http_proxy: url, https_proxy: url, NO_PROXY: "localhost,127.0.0.1,::1", no_proxy: "localhost,127.0.0.1,::1" };
  }

  resolvConf(): string {
    const servers = this.attachment.policy.dns?.servers ?? [];
    return servers.length > 0 ? servers.map((s) => `nameserver ${s}\n`).join("") : "# no DNS: this sandbox's policy allows no resolver\n";
  }

  async update(policy: NetworkPolicy): Promise<void> {
    if (policy === "none") {
      throw new FirewallError("E_FIREWALL_INVALID_RULE", "A live sandbox cannot switch to network \"none\"; use a policy with an empty allow-list to cut it off.");
    }
    await this.attachment.update(policy);
    await this.applyProxy(policy);
  }

  /** Open (or close) this sandbox's proxy listener and hand the proxy its domain list. */
  async applyProxy(policy: NetworkRules): Promise<void> {
    const wants = policy.domains.length > 0;
    if (wants && !this.listening) {
      await this.proxy.addListener(this.attachment.hostAddress, this.proxyPort);
      this.listening = true;
    }
    this.proxy.setPolicy(this.attachment.sandboxAddress, wants ? { sandboxId: this.attachment.sandboxId, domains: policy.domains, mode: policy.mode } : undefined);
    if (!wants && this.listening) {
      await this.proxy.removeListener(this.attachment.hostAddress, this.proxyPort);
      this.listening = false;
    }
  }

  rules(): Promise<string> {
    return this.attachment.rules();
  }

  async stats(): Promise<{ firewall: FirewallStats; proxy: ProxyCounts }> {
    return { firewall: await this.attachment.stats(), proxy: this.proxy.stats(this.attachment.sandboxId) };
  }

  release(): Promise<void> {
    this.released ??= (async () => {
      this.proxy.setPolicy(this.attachment.sandboxAddress, undefined);
      if (this.listening) await this.proxy.removeListener(this.attachment.hostAddress, this.proxyPort).catch(() => undefined);
      this.listening = false;
      this.proxy.forgetStats(this.attachment.sandboxId);
      await this.attachment.release();
    })();
    // A failed cleanup (E_FIREWALL_CLEANUP) may be retried.
    this.released.catch(() => (this.released = undefined));
    return this.released;
  }
}
