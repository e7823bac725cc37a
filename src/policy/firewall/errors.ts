import { LuminaError } from "../../errors.js";

/** Stable codes of egress-firewall errors. */
export type FirewallErrorCode =
  | "E_FIREWALL_PRIVILEGE" // not root, or no CAP_NET_ADMIN / CAP_SYS_ADMIN
  | "E_FIREWALL_NFT" // nft missing, or the kernel's nf_tables cannot be used
  | "E_FIREWALL_NETNS" // creating the network namespace, veth pair or addresses failed
  | "E_FIREWALL_RULES" // nft refused the generated rules (details carry nft's stderr)
  | "E_FIREWALL_INVALID_RULE" // a network policy that does not validate
  | "E_FIREWALL_CLEANUP" // a namespace, link or rule of ours could not be removed
  | "E_FIREWALL_PROXY" // the egress proxy failed (raised by the proxy)
  | "E_FIREWALL_UNKNOWN_SANDBOX"; // no live networked sandbox has that id

/** An error from the egress firewall: the policy, the namespace plumbing, the rules or the proxy. */
export class FirewallError extends LuminaError {
  declare readonly code: FirewallErrorCode;

  constructor(code: FirewallErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(code, message, options);
  }
}

/** What to do when LuminaGuard lacks the rights to manage namespaces and rules; appended to E_FIREWALL_PRIVILEGE. */
export const PRIVILEGE_HINT =
  "Run LuminaGuard as root (inside a container: --cap-add NET_ADMIN,SYS_ADMIN), or use network \"none\" for this sandbox.";

/** What to do when nftables cannot be used; appended to E_FIREWALL_NFT. */
export const NFT_HINT = "Install nftables (`apt-get install nftables`) and make sure the nf_tables kernel module can load (`modprobe nf_tables`).";
