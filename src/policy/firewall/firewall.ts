/**
 * The egress firewall's public face: attach a network to a sandbox, sweep
 * what crashed processes left behind, and map a sandbox address back to its
 * sandbox (for the egress proxy).
 *
 * An attach records the lease in the state file first (so a crash at any later
 * point leaves something sweep can find), then builds the namespace (`ip`) and
 * applies the rules (`nft`) in parallel: the rules refer to the veth by name, so
 * neither has to wait for the other. If either fails, both are undone.
 *
 * Process starts dominate the cost on slow-to-fork hosts, so by default `nft`
 * and the host-side `ip` are long-lived (session.ts) and the process that
 * configures the inside of a namespace is started ahead of time (spare.ts).
 * Measured on the project's 2-core VMs: attach ~10-13 ms p50, against ~27 ms
 * with a fresh `ip`/`nft` per step from helper shells and ~40 ms spawned from Node.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { runtimeDir } from "../../config/paths.js";
import { DEFAULT_POOL, allocateSubnet, hostRoutes, parsePool, subnetAt, type Pool, type Subnet } from "./addressing.js";
import { Nft, nftComplaint } from "./apply.js";
import { Attachment, type AttachmentContext, type NetworkAttachment } from "./attachment.js";
import { parseCidr } from "./cidr.js";
import { FirewallError } from "./errors.js";
import { enableForwarding, restoreForwarding, sandboxLinksExist, savedForwarding } from "./forwarding.js";
import { findTools, nftUnusable, requirePrivilege, type Tools } from "./host.js";
import { whichExecutable } from "../../probe.js";
import { CHAIN_PREFIX, newShort, sandboxNames, type SandboxNames } from "./names.js";
import { createBatches, currentObjects, destroySteps, insideStep } from "./netns.js";
import { allObjects, attachScript, releaseScript, type SandboxRuleSpec } from "./nft.js";
import type { NetworkPolicy } from "./policy.js";
import { defaultRunner, type CommandRunner } from "./runner.js";
import { ipSessionSpec, nftSessionSpec, Session } from "./session.js";
import { Spare } from "./spare.js";
import { resolveHosts, ruleElements } from "./spec.js";
import { StateStore, ownOwner, ownerAlive, type FirewallState } from "./state.js";
import { deleteTableScript, parseTableListing, removeListedObjects } from "./sweep.js";

export const DEFAULT_PROXY_PORT = 3128;

export interface FirewallOptions {
  /** IPv4 block sandbox /30s are taken from (default 10.203.0.0/16). */
  poolCidr?: string;
  /** Where the state file lives (default `<runtimeDir>/firewall`). Every LuminaGuard process on a host should share it. */
  stateDir?: string;
  /** Port of the host-side egress proxy that `domains` policies reach (default 3128). */
  proxyPort?: number;
  /** How one-off `ip` and `nft` commands are run (default: persistent helper shells). */
  runner?: CommandRunner;
  /** Keep one `nft -i` and one host-side `ip -batch` process for all changes (default true: ~3x faster attaches). */
  persistent?: boolean;
  /**
   * Spare namespaces kept ready (see spare.ts; needs `persistent`). Default 0: a spare
   * saves ~3 ms of an attach, but spawning its process blocks Node's event loop for
   * ~10 ms, so back-to-back sandboxes got slower with spares (bench/net: +26 ms vs +14 ms).
   */
  spareNamespaces?: number;
}

/** Per-sandbox network namespaces with default-deny nftables egress rules. */
export class Firewall {
  readonly pool: Pool;
  readonly stateDir: string;
  readonly proxyPort: number;
  private readonly store: StateStore;
  private readonly runner: CommandRunner;
  private readonly persistent: boolean;
  private ready: Promise<{ tools: Tools; nft: Nft }> | undefined;
  private verified: Promise<void> | undefined;
  private sessions: { nft: Session; ip: Session } | undefined;
  private baseInstalled = false;
  private readonly spareTarget: number;
  private readonly spares: Spare[] = [];
  private unshare: string | undefined;
  private readonly live = new Map<string, Attachment>();

  constructor(opts: FirewallOptions = {}) {
    this.pool = parsePool(opts.poolCidr ?? DEFAULT_POOL);
    this.proxyPort = opts.proxyPort ?? DEFAULT_PROXY_PORT;
    if (!Number.isInteger(this.proxyPort) || this.proxyPort < 1 || this.proxyPort > 65535) {
      throw new FirewallError("E_FIREWALL_INVALID_RULE", `Invalid egress proxy port ${opts.proxyPort}: use a port 1-65535 (default ${DEFAULT_PROXY_PORT}).`);
    }
    this.stateDir = opts.stateDir ?? join(runtimeDir(), "firewall");
    this.store = new StateStore(this.stateDir);
    this.runner = opts.runner ?? defaultRunner();
    this.persistent = opts.persistent ?? true;
    this.spareTarget = this.persistent ? Math.max(0, opts.spareNamespaces ?? 0) : 0;
  }

  /** Throws E_FIREWALL_PRIVILEGE / E_FIREWALL_NFT / E_FIREWALL_NETNS with the fix when this host cannot run networked sandboxes. */
  async check(): Promise<void> {
    requirePrivilege();
    const { tools } = await this.prepare();
    await this.dryRun(tools.nft);
  }

  /** Give a sandbox its own network namespace with `policy` enforced. Fails closed: nothing is left behind on error. */
  async attach(sandboxId: string, policy: NetworkPolicy): Promise<NetworkAttachment> {
    const t0 = performance.now();
    requirePrivilege();
    if (policy === "none") {
      throw new FirewallError("E_FIREWALL_INVALID_RULE", `Sandbox ${sandboxId} has network "none": it needs no network attachment (it only gets loopback).`);
    }
    const { tools, nft } = await this.prepare();
    const resolved = await resolveHosts(policy);
    const { short, subnet } = await this.lease(sandboxId);
    const names = sandboxNames(short);
    const els = ruleElements(policy, resolved, { sandboxId, hostAddress: subnet.hostAddress, proxyPort: this.proxyPort });
    const spec = { names, sandboxAddress: subnet.sandboxAddress, mode: policy.mode, allow: els.allow, host: els.host };
    const [ip, rules] = await Promise.allSettled([timed(() => this.createNetns(tools.ip, names, sandboxId, subnet)), timed(() => this.applyAttach(nft, spec, sandboxId))]);
    if (ip.status === "rejected" || rules.status === "rejected") {
      await this.undo(tools.ip, nft, names, subnet, rules.status === "fulfilled");
      if (rules.status === "rejected") {
        // Refused rules may mean nftables itself is unusable here: then say that, with its fix.
        await this.dryRun(tools.nft);
      }
      throw ip.status === "rejected" ? ip.reason : (rules as PromiseRejectedResult).reason;
    }
    const timings = { totalMs: performance.now() - t0, ipMs: ip.value, nftMs: rules.value };
    // Only once this attach is complete: starting a process blocks Node's thread for a few ms.
    setImmediate(() => this.refillSpares(tools.ip));
    const att = new Attachment(this.context(tools.ip, nft), sandboxId, names, subnet.hostAddress, subnet.sandboxAddress, policy, els.warnings, timings);
    this.live.set(short, att);
    return att;
  }

  /** The sandbox whose address this is (for the egress proxy: the client address of a connection), if one of ours. */
  sandboxForAddress(address: string): string | undefined {
    for (const a of this.live.values()) if (a.sandboxAddress === address) return a.sandboxId;
    return undefined;
  }

  /** Live attachments of this process (for stats export). */
  attachments(): NetworkAttachment[] {
    return [...this.live.values()];
  }

  /**
   * Remove what crashed LuminaGuard processes left: namespaces, veths, chains,
   * sets and counters of leases in the state file whose owner process is gone,
   * then (when no lease is left) restore forwarding and drop the table if no
   * sandbox chain remains in it. Returns what was removed.
   */
  async sweep(): Promise<string[]> {
    requirePrivilege();
    const { tools, nft } = await this.prepare();
    const failures: string[] = [];
    const removed = await this.store.update(async (state) => {
      const out: string[] = [];
      const dead = Object.entries(state.leases)
        .filter(([, l]) => !ownerAlive(l.owner))
        .map(([short, l]) => ({ short, names: sandboxNames(short), sandboxAddress: sandboxAddressOf(l.subnet) }));
      if (dead.length > 0) {
        const rules = await removeListedObjects(nft, dead);
        out.push(...rules.removed);
        if (rules.failure) failures.push(`nft: ${nftComplaint(rules.failure)}`);
        const before = dead.map((d) => ({ d, o: currentObjects(d.names) }));
        const cmds = before.flatMap(({ d, o }) => destroySteps(tools.ip, d.names, o)?.[0]?.input ?? "");
        if (cmds.length > 0) await this.runner.run([{ argv: [tools.ip, "-force", "-batch", "-"], input: cmds.join("") }]);
        for (const { d, o } of before) {
          const still = currentObjects(d.names);
          if (o.netns && !still.netns) out.push(`netns ${d.names.netns}`);
          if (o.link && !still.link) out.push(`link ${d.names.hostIf}`);
          if (still.netns || still.link) failures.push(`${d.names.netns}/${d.names.hostIf} still exist`);
          else if (!rules.failure) delete state.leases[d.short];
        }
      }
      if (Object.keys(state.leases).length === 0) {
        out.push(...this.restoreForwardingIfLast(state));
        if (await this.dropTableIfUnused(nft)) out.push("nft table inet luminaguard");
      }
      return out;
    });
    if (failures.length > 0) {
      throw new FirewallError("E_FIREWALL_CLEANUP", `Sweep could not remove everything: ${failures.join("; ")}. Check for processes still inside those namespaces, then sweep again.`, { details: { removed, failures } });
    }
    return removed;
  }

  /**
   * Stop the helper processes. With no sandbox of any process left in the state
   * file, the (then empty) table goes too. Attachments stay: release them first.
   */
  async close(): Promise<void> {
    try {
      if (this.ready && this.live.size === 0) {
        const { nft } = await this.ready;
        await this.store.update(async (state) => {
          if (Object.keys(state.leases).length === 0) await this.dropTableIfUnused(nft);
        });
      }
    } catch {
      // Best effort: an empty table is inert, and the next sweep removes it.
    } finally {
      this.runner.close();
      for (const s of this.spares.splice(0)) s.close();
      this.sessions?.nft.close();
      this.sessions?.ip.close();
      this.sessions = undefined;
      this.ready = undefined;
      this.verified = undefined;
      this.baseInstalled = false;
    }
  }

  /**
   * Find the tools and set up the sessions (their processes start on first use).
   * Kept cheap, because a one-shot `luminaguard exec --net` pays it on every run:
   * the kernel dry run is check()'s job, and spares start only after an attach.
   */
  private prepare(): Promise<{ tools: Tools; nft: Nft }> {
    if (!this.ready) {
      this.ready = (async () => {
        const [tools, unshare] = await Promise.all([findTools(), whichExecutable("unshare")]);
        this.unshare = unshare;
        if (this.persistent) this.sessions = { nft: new Session(nftSessionSpec(tools.nft)), ip: new Session(ipSessionSpec(tools.ip)) };
        return { tools, nft: new Nft(this.runner, tools.nft, this.sessions?.nft) };
      })();
      // A failed setup is retried next time (the admin may have fixed it).
      this.ready.catch(() => (this.ready = undefined));
    }
    return this.ready;
  }

  /** A dry run (-c) of a real attach script: the kernel checks every feature we use, nothing is applied. Cached once it passes. */
  private dryRun(nftPath: string): Promise<void> {
    if (!this.verified) {
      const sample = attachScript({ names: sandboxNames("00000000"), sandboxAddress: "10.255.255.254", mode: "enforce", allow: [], host: [] });
      this.verified = this.runner.run([{ argv: [nftPath, "-c", "-f", "-"], input: sample }]).then((r) => {
        if (r.code !== 0) throw nftUnusable(r.output);
      });
      this.verified.catch(() => (this.verified = undefined));
    }
    return this.verified;
  }

  /** Record a new lease: a free short id and /30, forwarding on. Sync inside the lock, so it holds it briefly. */
  private lease(sandboxId: string): Promise<{ short: string; subnet: Subnet }> {
    return this.store.update((state) => {
      const leased = new Set<number>();
      for (const l of Object.values(state.leases)) {
        const i = this.indexOf(l.subnet);
        if (i !== undefined) leased.add(i);
      }
      const subnet = allocateSubnet(this.pool, leased, state.nextSubnet, hostRoutes());
      if (!subnet) {
        throw new FirewallError(
          "E_FIREWALL_NETNS",
          `No free /30 is left in the sandbox address pool ${this.pool.cidr} (${leased.size} leased; the rest overlap routes of this host). Release sandboxes, run a sweep, or configure a larger or different pool.`,
        );
      }
      let short: string;
      do short = newShort();
      while (state.leases[short] !== undefined || existsSync(sandboxNames(short).netnsPath) || existsSync(`/sys/class/net/${sandboxNames(short).hostIf}`));
      const n = sandboxNames(short);
      state.leases[short] = { sandboxId, netns: n.netns, veth: n.hostIf, chain: n.chain, subnet: subnet.cidr, owner: ownOwner(), createdAt: new Date().toISOString() };
      state.nextSubnet = (subnet.index + 1) % this.pool.count;
      // The previous setting goes to a host-wide record (see forwarding.ts), not this state file.
      enableForwarding();
      return { short, subnet };
    });
  }

  /**
   * The attach transaction. Once this process has installed the base (table,
   * base chains, maps) it sends only the sandbox's part, which is about half the
   * work; if the base has vanished meanwhile (a sweep or close elsewhere dropped
   * the empty table), that fails and the full script follows.
   */
  private async applyAttach(nft: Nft, spec: SandboxRuleSpec, sandboxId: string): Promise<void> {
    if (this.baseInstalled && (await nft.tryApply(attachScript(spec, { withBase: false }))).code === 0) return;
    await nft.apply(attachScript(spec), `for sandbox ${sandboxId}`);
    this.baseInstalled = true;
  }

  private async createNetns(ip: string, names: SandboxNames, sandboxId: string, subnet: Subnet): Promise<void> {
    const taken = this.takeSpare();
    const { root, inside } = createBatches(names, subnet, { adoptPid: taken?.pid });
    const fail = (output: string, cause?: unknown) =>
      new FirewallError(
        "E_FIREWALL_NETNS",
        `Could not create the network namespace ${names.netns} for sandbox ${sandboxId}: ${output.trim().split("\n")[0] || "ip failed"}. Check that /run/netns is writable and the veth module loads (\`modprobe veth\`).`,
        { cause, details: { output } },
      );
    try {
      if (this.sessions) {
        const r = await this.sessions.ip.run(root).catch((err: Error) => Promise.reject(fail(err.message, err)));
        if (!r.ok) throw fail(r.output);
      } else {
        const r = await this.runner.run([{ argv: [ip, "-batch", "-"], input: root }]);
        if (r.code !== 0) throw fail(r.output);
      }
      if (taken) {
        const r = await taken.spare.run(inside).catch((err: Error) => Promise.reject(fail(err.message, err)));
        if (!r.ok) throw fail(r.output);
      } else {
        const r = await this.runner.run([insideStep(ip, names, inside)]);
        if (r.code !== 0) throw fail(r.output);
      }
    } finally {
      taken?.spare.end();
    }
  }

  /** A ready spare namespace and its pid, if one is at hand. */
  private takeSpare(): { spare: Spare; pid: number } | undefined {
    while (this.spares.length > 0) {
      const spare = this.spares.shift()!;
      const pid = spare.usablePid();
      if (pid !== undefined) return { spare, pid };
      spare.close();
    }
    return undefined;
  }

  private refillSpares(ip: string): void {
    if (!this.sessions || !this.unshare) return;
    while (this.spares.length < this.spareTarget) this.spares.push(new Spare(this.unshare, ip));
  }

  /** Undo a failed attach; the lease goes only when nothing is left (otherwise sweep finds it). */
  private async undo(ip: string, nft: Nft, names: SandboxNames, subnet: Subnet, rulesApplied: boolean): Promise<void> {
    const steps = destroySteps(ip, names);
    await Promise.allSettled([
      steps ? this.runner.run(steps) : undefined,
      rulesApplied ? nft.tryApply(releaseScript(names, allObjects(names, subnet.sandboxAddress))) : undefined,
    ]);
    const still = currentObjects(names);
    if (!still.link && !still.netns) await this.settle(names.short).catch(() => {});
  }

  private context(ip: string, nft: Nft): AttachmentContext {
    return {
      ip,
      nft,
      runner: this.runner,
      proxyPort: this.proxyPort,
      forget: (short) => this.live.delete(short),
      settle: (short) => this.settle(short),
    };
  }

  /**
   * Drop a lease whose objects are all gone; after the last one, forwarding goes
   * back as it was. The table stays until close() or sweep: recreating it (and
   * its hooks) for every one-at-a-time sandbox would double the attach cost,
   * and an empty table with accept policies changes nothing.
   */
  private settle(short: string): Promise<void> {
    return this.store.update((state) => {
      delete state.leases[short];
      if (Object.keys(state.leases).length === 0) this.restoreForwardingIfLast(state);
    });
  }

  /** Forwarding back as it was before the first sandbox, unless another state directory's sandboxes still route through us. */
  private restoreForwardingIfLast(state: FirewallState): string[] {
    const saved = state.forwarding ?? savedForwarding();
    if (!saved || sandboxLinksExist()) return [];
    restoreForwarding(saved);
    delete state.forwarding;
    return [`net.ipv4.ip_forward restored to ${saved.ipForward}`];
  }

  /** Delete our table when no sandbox chain (of any state directory) is in it; true when it was deleted. */
  private async dropTableIfUnused(nft: Nft): Promise<boolean> {
    const table = await nft.table();
    if (table === undefined || parseTableListing(table).chains.some((c) => c.startsWith(CHAIN_PREFIX))) return false;
    return (await nft.tryApply(deleteTableScript())).code === 0;
  }

  private indexOf(cidr: string): number | undefined {
    const c = parseCidr(cidr);
    if ("error" in c || c.family !== 4) return undefined;
    const i = (Number(c.first) - this.pool.first) / 4;
    return Number.isInteger(i) && i >= 0 && i < this.pool.count && subnetAt(this.pool, i).cidr === c.text ? i : undefined;
  }
}

/** The sandbox side (.2) of a lease's /30. */
function sandboxAddressOf(subnet: string): string | undefined {
  const c = parseCidr(subnet);
  if ("error" in c || c.family !== 4) return undefined;
  return subnetAt({ cidr: c.text, first: Number(c.first), count: 1 }, 0).sandboxAddress;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}
