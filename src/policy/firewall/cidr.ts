/**
 * IPv4/IPv6 addresses and CIDR blocks as numbers, for validation, address
 * allocation and building non-overlapping nft set elements. IPv4 uses plain
 * numbers (exact up to 2^32); IPv6 uses bigint.
 */
import { isIPv4, isIPv6 } from "node:net";

/** A parsed CIDR block. `first`/`last` are the numeric bounds; IPv4 only uses `number`. */
export interface Cidr {
  family: 4 | 6;
  /** Canonical text, e.g. "10.0.0.0/8" or "2001:db8::/32" (a single address keeps its /32 or /128). */
  text: string;
  prefix: number;
  first: bigint;
  last: bigint;
}

/** The IPv4 address as an unsigned 32-bit number; undefined when `s` is not a dotted quad. */
export function ipv4ToNumber(s: string): number | undefined {
  if (!isIPv4(s)) return undefined;
  return s.split(".").reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** Dotted-quad text of an unsigned 32-bit number. */
export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** The IPv6 address as a 128-bit bigint; undefined when `s` is not IPv6. */
export function ipv6ToBigint(s: string): bigint | undefined {
  if (!isIPv6(s) || s.includes("%")) return undefined;
  let text = s;
  // An embedded IPv4 tail ("::ffff:1.2.3.4") becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (v4 !== undefined) {
    const n = ipv4ToNumber(v4)!;
    text = text.slice(0, -v4.length) + `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const groups = (part: string | undefined) => (part ? part.split(":") : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return all.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Compressed IPv6 text of a 128-bit bigint (RFC 5952 style). */
export function bigintToIpv6(n: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt((7 - i) * 16)) & 0xffffn));
  // Compress the longest run (at least two) of zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** The family of an IP literal, or undefined when `s` is not one. */
export function ipFamily(s: string): 4 | 6 | undefined {
  return isIPv4(s) ? 4 : isIPv6(s) ? 6 : undefined;
}

/**
 * Parse "a.b.c.d", "a.b.c.d/n", "x::y" or "x::y/n". Returns an error text (for the
 * policy's messages) instead of throwing, so callers can report it in place.
 */
export function parseCidr(input: string): Cidr | { error: string } {
  const slash = input.indexOf("/");
  const addr = slash < 0 ? input : input.slice(0, slash);
  const prefixText = slash < 0 ? undefined : input.slice(slash + 1);
  const family = ipFamily(addr);
  if (family === undefined || addr.includes("%")) return { error: `"${input}" is not an IP address or CIDR block (e.g. "10.1.0.0/16" or "2001:db8::/32")` };
  const bits = family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return { error: `"${input}" has an invalid prefix length: write a number 0-${bits} after the "/"` };
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return { error: `"${input}" has prefix length ${prefix}, but IPv${family} allows at most ${bits}` };
  const value = family === 4 ? BigInt(ipv4ToNumber(addr)!) : ipv6ToBigint(addr)!;
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  const first = value & ~hostMask;
  const format = (n: bigint) => (family === 4 ? numberToIpv4(Number(n)) : bigintToIpv6(n));
  if ((value & hostMask) !== 0n) return { error: `"${input}" has host bits set: write "${format(first)}/${prefix}"` };
  return { family, text: `${format(first)}/${prefix}`, prefix, first, last: first | hostMask };
}

/** True when block `inner` lies entirely inside block `outer` (same family). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && outer.first <= inner.first && inner.last <= outer.last;
}
