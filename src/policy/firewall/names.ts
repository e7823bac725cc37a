/**
 * Every kernel object the firewall creates is named from one 8-hex-digit
 * "short" id, with prefixes nothing else on a host uses. Sweep recognises ours
 * by these prefixes and the state file together.
 */
import { randomBytes } from "node:crypto";

/** The nftables table LuminaGuard owns (family inet). */
export const TABLE = "luminaguard";
export const FAMILY = "inet";
/** Host-side veth names start with this; the base chains match it as "lgh*". */
export const HOST_IF_PREFIX = "lgh";
export const SANDBOX_IF_PREFIX = "lgs";
export const NETNS_PREFIX = "lg-";
export const CHAIN_PREFIX = "sb_";
export const NETNS_DIR = "/run/netns";

/** The names of one sandbox's objects. Interface names stay within Linux's 15 characters. */
export interface SandboxNames {
  short: string;
  netns: string;
  netnsPath: string;
  hostIf: string;
  sandboxIf: string;
  /** Egress (forward hook) chain. */
  chain: string;
  /** Chain for traffic to the host itself (input hook). */
  inChain: string;
  /** Allowed destinations (ipv4_addr . inet_proto . inet_service, intervals). */
  allowSet: string;
  /** Allowed destinations on the host itself: the proxy port and local resolvers. */
  hostSet: string;
  /** Per-destination counters of allowed and denied new connections (dynamic). */
  acceptedSet: string;
  deniedSet: string;
  /** Totals that stay exact even when the dynamic sets are full. */
  allowedCounter: string;
  deniedCounter: string;
}

/** A fresh random short id. */
export function newShort(): string {
  return randomBytes(4).toString("hex");
}

/** True for a short id as we make them. */
export function isShort(s: string): boolean {
  return /^[0-9a-f]{8}$/.test(s);
}

export function sandboxNames(short: string): SandboxNames {
  const netns = `${NETNS_PREFIX}${short}`;
  const c = `${CHAIN_PREFIX}${short}`;
  return {
    short,
    netns,
    netnsPath: `${NETNS_DIR}/${netns}`,
    hostIf: `${HOST_IF_PREFIX}${short}`,
    sandboxIf: `${SANDBOX_IF_PREFIX}${short}`,
    chain: c,
    inChain: `${c}_in`,
    allowSet: `${c}_allow`,
    hostSet: `${c}_host`,
    acceptedSet: `${c}_acc`,
    deniedSet: `${c}_den`,
    allowedCounter: `${c}_allowed`,
    deniedCounter: `${c}_denied`,
  };
}

/** The short id inside an object name of ours ("sb_1a2b3c4d_allow", "lgh1a2b3c4d", "lg-1a2b3c4d"), if it is one. */
export function shortOf(name: string): string | undefined {
  const m = /^(?:sb_|lgh|lgs|lg-)([0-9a-f]{8})(?:_[a-z]+)?$/.exec(name);
  return m?.[1];
}
