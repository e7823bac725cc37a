/**
 * What the firewall needs from the host: the rights (CAP_NET_ADMIN for links
 * and rules, CAP_SYS_ADMIN for `ip netns add`'s mounts) and the tools (`ip`,
 * `nft`). Checked before anything is created, so a sandbox that asks for
 * network fails closed with a clear error instead of half-built plumbing.
 */
import { readFileSync } from "node:fs";
import { whichExecutable } from "../../probe.js";
import { FirewallError, NFT_HINT, PRIVILEGE_HINT } from "./errors.js";

const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;

/** Absolute paths of the tools the firewall runs. */
export interface Tools {
  ip: string;
  nft: string;
}

/**
 * Throw E_FIREWALL_PRIVILEGE unless this process may manage namespaces and rules.
 * Root is required, not just the capabilities: `ip` and `nft` run as children,
 * and a non-root process's capabilities do not pass to them.
 */
export function requirePrivilege(host: { uid?: number | undefined; status?: string | undefined } = {}): void {
  const status = "status" in host ? host.status : readStatus();
  const uid = "uid" in host ? host.uid : process.getuid?.();
  const eff = capMask(status, "CapEff");
  const missing = [
    [CAP_NET_ADMIN, "CAP_NET_ADMIN"],
    [CAP_SYS_ADMIN, "CAP_SYS_ADMIN"],
  ]
    .filter(([bit]) => eff === undefined || (eff & (1n << BigInt(bit!))) === 0n)
    .map(([, name]) => name);
  const root = uid === 0;
  if (!root || missing.length > 0) {
    const why = !root ? "LuminaGuard is not running as root" : `this process lacks ${missing.join(" and ")}`;
    throw new FirewallError("E_FIREWALL_PRIVILEGE", `A sandbox with network access needs a network namespace and firewall rules, but ${why}. ${PRIVILEGE_HINT}`, { details: { missing, root } });
  }
}

/** Find `ip` and `nft`; E_FIREWALL_NETNS / E_FIREWALL_NFT with the install command when one is missing. */
export async function findTools(): Promise<Tools> {
  const [ip, nft] = await Promise.all([whichExecutable("ip"), whichExecutable("nft")]);
  if (!nft) throw new FirewallError("E_FIREWALL_NFT", `nft (nftables) is not installed, so sandbox network rules cannot be set. ${NFT_HINT}`);
  if (!ip) throw new FirewallError("E_FIREWALL_NETNS", "ip (iproute2) is not installed, so sandbox network namespaces cannot be made. Install it: `apt-get install iproute2`.");
  return { ip, nft };
}

/** Turn a failed `nft list tables` into the right error. */
export function nftUnusable(output: string): FirewallError {
  if (/operation not permitted|permission denied/i.test(output)) {
    return new FirewallError("E_FIREWALL_PRIVILEGE", `nft may not read the ruleset: ${output.trim().split("\n")[0]}. ${PRIVILEGE_HINT}`, { details: { stderr: output } });
  }
  return new FirewallError("E_FIREWALL_NFT", `nftables does not work on this host: ${output.trim().split("\n")[0] || "nft failed"}. ${NFT_HINT}`, { details: { stderr: output } });
}

function readStatus(): string | undefined {
  try {
    return readFileSync("/proc/self/status", "utf8");
  } catch {
    return undefined;
  }
}

function capMask(status: string | undefined, field: string): bigint | undefined {
  const hex = status && new RegExp(`^${field}:\\s*([0-9a-fA-F]+)`, "m").exec(status)?.[1];
  return hex ? BigInt(`0x${hex}`) : undefined;
}
