/** The egress firewall: per-sandbox network namespaces, default-deny nftables rules, modes and counters. */
export { Firewall, DEFAULT_PROXY_PORT, type FirewallOptions } from "./firewall.js";
export type { NetworkAttachment, AttachTimings } from "./attachment.js";
export { FirewallError, type FirewallErrorCode } from "./errors.js";
export { networkPolicySchema, parseNetworkPolicy, type NetworkPolicy, type NetworkRules, type NetworkMode, type AllowRule, type PortRange, type Proto } from "./policy.js";
export type { FirewallStats, DestinationStat } from "./stats.js";
export { DEFAULT_POOL } from "./addressing.js";
export { TABLE as FIREWALL_TABLE, NETNS_PREFIX, HOST_IF_PREFIX } from "./names.js";
