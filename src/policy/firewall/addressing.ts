/**
 * Per-sandbox point-to-point subnets: each networked sandbox gets a /30 from a
 * pool (default 10.203.0.0/16, 16384 sandboxes), the host side of the veth takes
 * .1 and the sandbox side .2.
 *
 * The state file records which subnets are leased (so two LuminaGuard processes
 * sharing it never collide). On top of that, a subnet that overlaps any route
 * the host already has is skipped: that catches a LuminaGuard with another state
 * directory, and a pool that clashes with a real network.
 */
import { readFileSync } from "node:fs";
import { numberToIpv4, parseCidr } from "./cidr.js";
import { FirewallError } from "./errors.js";

export const DEFAULT_POOL = "10.203.0.0/16";
const SUBNET_PREFIX = 30;
const SUBNET_SIZE = 2 ** (32 - SUBNET_PREFIX);

/** An IPv4 pool to carve /30s from. */
export interface Pool {
  cidr: string;
  first: number;
  /** How many /30s fit. */
  count: number;
}

/** One sandbox's /30. */
export interface Subnet {
  /** Position in the pool; what the state file stores. */
  index: number;
  cidr: string;
  hostAddress: string;
  sandboxAddress: string;
}

/** An IPv4 route of the host, as numeric bounds. */
export interface RouteRange {
  first: number;
  last: number;
}

/** Validate a pool CIDR (IPv4, /30 or larger). */
export function parsePool(cidr: string): Pool {
  const c = parseCidr(cidr);
  if ("error" in c) throw new FirewallError("E_FIREWALL_INVALID_RULE", `Invalid sandbox address pool: ${c.error}.`);
  if (c.family !== 4 || c.prefix > SUBNET_PREFIX) {
    throw new FirewallError("E_FIREWALL_INVALID_RULE", `Invalid sandbox address pool "${cidr}": use a private IPv4 block of /${SUBNET_PREFIX} or larger, e.g. "${DEFAULT_POOL}".`);
  }
  return { cidr: c.text, first: Number(c.first), count: 2 ** (SUBNET_PREFIX - c.prefix) };
}

/** The /30 at `index` in the pool. */
export function subnetAt(pool: Pool, index: number): Subnet {
  const net = pool.first + index * SUBNET_SIZE;
  return { index, cidr: `${numberToIpv4(net)}/${SUBNET_PREFIX}`, hostAddress: numberToIpv4(net + 1), sandboxAddress: numberToIpv4(net + 2) };
}

/**
 * The first free /30 at or after `start` (wrapping around), skipping leased
 * indices and any that overlap a host route. Starting after the last lease
 * rather than at 0 keeps a just-freed address unused for as long as possible,
 * so stale conntrack entries of a released sandbox never meet a new one.
 */
export function allocateSubnet(pool: Pool, leased: ReadonlySet<number>, start: number, routes: readonly RouteRange[]): Subnet | undefined {
  for (let k = 0; k < pool.count; k++) {
    const index = (((start + k) % pool.count) + pool.count) % pool.count;
    if (leased.has(index)) continue;
    const first = pool.first + index * SUBNET_SIZE;
    const last = first + SUBNET_SIZE - 1;
    if (routes.some((r) => r.first <= last && first <= r.last)) continue;
    return subnetAt(pool, index);
  }
  return undefined;
}

/** IPv4 routes of the main table from /proc/net/route (default routes left out: they overlap everything). */
export function parseProcNetRoute(text: string): RouteRange[] {
  const out: RouteRange[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    // Destination and Mask are hex in host (little-endian) byte order.
    const dest = leHex(f[1]!);
    const mask = leHex(f[7]!);
    if (dest === undefined || mask === undefined || mask === 0) continue;
    const first = (dest & mask) >>> 0;
    out.push({ first, last: (first | (~mask >>> 0)) >>> 0 });
  }
  return out;
}

/** The host's IPv4 routes now; empty when /proc/net/route cannot be read. */
export function hostRoutes(): RouteRange[] {
  try {
    return parseProcNetRoute(readFileSync("/proc/net/route", "utf8"));
  } catch {
    return [];
  }
}

function leHex(h: string): number | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(h)) return undefined;
  const n = parseInt(h, 16);
  return (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | (n >>> 24)) >>> 0;
}
