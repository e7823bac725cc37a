/**
 * One sandbox's network: its namespace, addresses and rules, with live policy
 * updates, listing, counters and release. Updates and release run one at a
 * time per sandbox, so a release can never be overtaken by an update that
 * would recreate the chains it just removed.
 */
import type { Nft } from "./apply.js";
import { nftComplaint } from "./apply.js";
import { FirewallError } from "./errors.js";
import { FAMILY, TABLE, type SandboxNames } from "./names.js";
import { currentObjects, destroySteps } from "./netns.js";
import { allObjects, listCommands, releaseScript, sandboxScript } from "./nft.js";
import type { NetworkPolicy, NetworkRules } from "./policy.js";
import type { CommandRunner } from "./runner.js";
import { resolveHosts, ruleElements } from "./spec.js";
import { parseCounterSet, parseNamedCounter, type FirewallStats } from "./stats.js";
import { removeListedObjects } from "./sweep.js";

/** How long the parts of an attach took, in milliseconds (the two run in parallel). */
export interface AttachTimings {
  totalMs: number;
  /** Both `ip` batches (host side, then inside the namespace). */
  ipMs: number;
  /** The one `nft -f` transaction. */
  nftMs: number;
}

/** A sandbox's network, as the sandbox backend uses it. */
export interface NetworkAttachment {
  readonly sandboxId: string;
  /** /run/netns/lg-<short>: run the sandbox in it with `nsenter --net=<netnsPath>`. */
  readonly netnsPath: string;
  /** The host-side veth (lgh<short>). */
  readonly hostInterface: string;
  /** The veth end inside the namespace (lgs<short>), which holds `sandboxAddress`. */
  readonly sandboxInterface: string;
  /** Host side of the /30; the egress proxy listens here. */
  readonly hostAddress: string;
  /** The sandbox's own address (what the proxy sees as the client address). */
  readonly sandboxAddress: string;
  /** Things to tell the user loudly (disabled mode, rules without effect). Replaced by update(). */
  readonly warnings: string[];
  /** The policy in force. */
  readonly policy: NetworkRules;
  readonly timings: AttachTimings;
  /** Replace the policy in one atomic transaction; new connections follow it at once and open ones to removed destinations are cut. */
  update(policy: NetworkPolicy): Promise<void>;
  /** The live rules and sets, as nft prints them. */
  rules(): Promise<string>;
  /** Allowed and denied connections, per destination and in total. */
  stats(): Promise<FirewallStats>;
  /** Remove rules, namespace, veth and the address lease. Idempotent; retry after an E_FIREWALL_CLEANUP. */
  release(): Promise<void>;
}

/** What an attachment needs from its Firewall. */
export interface AttachmentContext {
  ip: string;
  nft: Nft;
  runner: CommandRunner;
  proxyPort: number;
  /** Forget the sandbox (address lookups) as soon as release starts. */
  forget(short: string): void;
  /** Drop the lease once everything is removed (and restore forwarding / drop the table after the last). */
  settle(short: string): Promise<void>;
}

export class Attachment implements NetworkAttachment {
  readonly netnsPath: string;
  readonly hostInterface: string;
  readonly sandboxInterface: string;
  warnings: string[];
  policy: NetworkRules;
  private queue: Promise<unknown> = Promise.resolve();
  private releasing: Promise<void> | undefined;
  private released = false;

  constructor(
    private readonly ctx: AttachmentContext,
    readonly sandboxId: string,
    private readonly names: SandboxNames,
    readonly hostAddress: string,
    readonly sandboxAddress: string,
    policy: NetworkRules,
    warnings: string[],
    readonly timings: AttachTimings,
  ) {
    this.netnsPath = names.netnsPath;
    this.hostInterface = names.hostIf;
    this.sandboxInterface = names.sandboxIf;
    this.policy = policy;
    this.warnings = warnings;
  }

  update(policy: NetworkPolicy): Promise<void> {
    return this.serial(async () => {
      if (this.released) throw this.goneError("update its network policy");
      if (policy === "none") {
        throw new FirewallError("E_FIREWALL_INVALID_RULE", `Cannot switch sandbox ${this.sandboxId} to network "none" while it runs: release its network instead (or use an empty allow-list).`);
      }
      const resolved = await resolveHosts(policy);
      const els = ruleElements(policy, resolved, { sandboxId: this.sandboxId, hostAddress: this.hostAddress, proxyPort: this.ctx.proxyPort });
      await this.ctx.nft.apply(sandboxScript({ names: this.names, sandboxAddress: this.sandboxAddress, mode: policy.mode, allow: els.allow, host: els.host }), `for sandbox ${this.sandboxId} (policy update)`);
      this.policy = policy;
      this.warnings = els.warnings;
    });
  }

  async rules(): Promise<string> {
    if (this.released) throw this.goneError("list its rules");
    const r = await this.ctx.nft.text(listCommands(this.names));
    if (r.code !== 0) throw new FirewallError("E_FIREWALL_RULES", `Could not list the rules of sandbox ${this.sandboxId}: ${nftComplaint(r.output)}. Its rules may have been removed by hand; release and re-create its network.`);
    // Each listing is wrapped in its own "table ... {" block: print one block around all of them.
    const body = r.output.split("\n").filter((l) => l !== `table ${FAMILY} ${TABLE} {` && l !== "}" && l.trim() !== "");
    const head = `# sandbox ${this.sandboxId}: mode ${this.policy.mode}, address ${this.sandboxAddress}, netns ${this.names.netns}, veth ${this.names.hostIf}`;
    return `${head}\ntable ${FAMILY} ${TABLE} {\n${body.join("\n")}\n}\n`;
  }

  async stats(): Promise<FirewallStats> {
    if (this.released) throw this.goneError("read its counters");
    const n = this.names;
    const [acc, den, allowed, denied] = await this.ctx.nft.json([
      ["list", "set", FAMILY, TABLE, n.acceptedSet],
      ["list", "set", FAMILY, TABLE, n.deniedSet],
      ["list", "counter", FAMILY, TABLE, n.allowedCounter],
      ["list", "counter", FAMILY, TABLE, n.deniedCounter],
    ]);
    return { allowed: parseCounterSet(acc), denied: parseCounterSet(den), allowedTotal: parseNamedCounter(allowed), deniedTotal: parseNamedCounter(denied) };
  }

  release(): Promise<void> {
    this.released = true;
    if (!this.releasing) {
      this.ctx.forget(this.names.short);
      this.releasing = this.serial(() => this.removeAll());
      // A failed release may be retried (e.g. after the admin fixed what blocked it).
      this.releasing.catch(() => (this.releasing = undefined));
    }
    return this.releasing;
  }

  private async removeAll(): Promise<void> {
    const n = this.names;
    const problems: string[] = [];
    const rules = async () => {
      const r = await this.ctx.nft.tryApply(releaseScript(n, allObjects(n, this.sandboxAddress)));
      if (r.code === 0) return;
      // Part of it is gone already (removed by hand, or an earlier release got halfway): remove what is left.
      const left = await removeListedObjects(this.ctx.nft, [{ short: n.short, sandboxAddress: this.sandboxAddress }]);
      if (left.failure) problems.push(`nft: ${nftComplaint(left.failure)}`);
    };
    const links = async () => {
      const steps = destroySteps(this.ctx.ip, n);
      if (!steps) return;
      const r = await this.ctx.runner.run(steps);
      const still = currentObjects(n);
      if (still.link || still.netns) problems.push(`ip: ${r.output.trim().split("\n")[0] || "the namespace or veth is still there"}`);
    };
    const results = await Promise.allSettled([rules(), links()]);
    for (const r of results) if (r.status === "rejected") problems.push((r.reason as Error).message);
    if (problems.length > 0) {
      throw new FirewallError(
        "E_FIREWALL_CLEANUP",
        `Could not fully remove the network of sandbox ${this.sandboxId} (${n.netns}, ${n.hostIf}, ${n.chain}): ${problems.join("; ")}. Retry release(), or run a sweep; the lease stays recorded until then.`,
        { details: { problems } },
      );
    }
    await this.ctx.settle(n.short);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => {});
    return next;
  }

  private goneError(what: string): FirewallError {
    return new FirewallError("E_FIREWALL_RULES", `Cannot ${what}: the network of sandbox ${this.sandboxId} has been released. Attach a new one.`);
  }
}
