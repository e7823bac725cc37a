/**
 * Reading the live firewall of any LuminaGuard process on this host, for
 * `luminaguard firewall show`: the state file says which sandboxes have a
 * network, and nft prints their rules as the kernel holds them.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { runtimeDir } from "../../config/paths.js";
import { FirewallError } from "./errors.js";
import { findTools, requirePrivilege } from "./host.js";
import { sandboxNames } from "./names.js";
import { listCommands } from "./nft.js";
import { StateStore, ownerAlive } from "./state.js";

/** One networked sandbox as the state file records it. */
export interface LiveNetwork {
  sandboxId: string;
  short: string;
  subnet: string;
  netns: string;
  ownerPid: number;
  ownerAlive: boolean;
  createdAt: string;
}

/** Every networked sandbox in the state file (including ones a crashed process left for sweep). */
export function liveNetworks(stateDir = join(runtimeDir(), "firewall")): LiveNetwork[] {
  const state = new StateStore(stateDir).read();
  return Object.entries(state.leases).map(([short, l]) => ({
    sandboxId: l.sandboxId,
    short,
    subnet: l.subnet,
    netns: sandboxNames(short).netns,
    ownerPid: l.owner.pid,
    ownerAlive: ownerAlive(l.owner),
    createdAt: l.createdAt,
  }));
}

/** The live nftables rules and sets of one sandbox, as nft prints them. */
export async function showSandboxRules(sandboxId: string, stateDir?: string): Promise<string> {
  requirePrivilege();
  const live = liveNetworks(stateDir);
  const found = live.find((n) => n.sandboxId === sandboxId);
  if (!found) {
    const known = live.map((n) => n.sandboxId).join(", ") || "none";
    throw new FirewallError("E_FIREWALL_UNKNOWN_SANDBOX", `No live sandbox ${sandboxId} has a network on this host (networked sandboxes now: ${known}). Sandboxes with network "none" have no rules to show.`);
  }
  const { nft } = await findTools();
  // One nft call per listing: nft 1.0.6 leaves statements out when several lists share one run.
  const parts = await Promise.all(listCommands(sandboxNames(found.short)).map((args) => run(nft, args)));
  const head = `# sandbox ${found.sandboxId}: subnet ${found.subnet}, netns ${found.netns}, owner pid ${found.ownerPid}${found.ownerAlive ? "" : " (gone: sweep will remove it)"}`;
  return [head, ...parts].join("\n");
}

function run(nft: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(nft, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new FirewallError("E_FIREWALL_RULES", `nft ${args.join(" ")} failed: ${String(stderr).trim() || err.message}`, { cause: err }));
      else resolve(stdout.trimEnd());
    });
  });
}
