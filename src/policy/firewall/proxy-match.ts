/**
 * Name matching for the egress proxy: turning a host from a CONNECT line, an
 * absolute URI or a TLS SNI into one canonical form, and checking it against a
 * sandbox's allowed domains.
 *
 * Everything is compared in one canonical form (lowercase ASCII, punycode for
 * IDN, no trailing dot, IPv4 in dotted quad, IPv6 compressed), and the proxy
 * later resolves and connects to exactly that canonical name. Matching one
 * spelling and connecting to another would let "0x7f.1" or "EXAMPLE.com." slip
 * past a rule written for something else.
 */
import { isIP } from "node:net";
import { domainToASCII } from "node:url";

/** A host in canonical form. `kind` says whether it is a DNS name or an address literal. */
export interface CanonicalHost {
  kind: "name" | "ipv4" | "ipv6";
  /** Lowercase ASCII; IPv6 without brackets. */
  host: string;
}

/** Ports a domain entry without an explicit port allows (plain HTTP and HTTPS). */
export const DEFAULT_PORTS: readonly number[] = [80, 443];

// Letters, digits, hyphens and underscores (real names such as "_dmarc" use them), 1-63 per label.
const LABEL = /^[a-z0-9_-]{1,63}$/;
// Characters that end or escape a host inside a URL (controls and space are checked by code).
const URL_DELIMITERS = new Set("/\\?#@:%[]<>^|\"'`{}");

function hasUrlDelimiter(s: string): boolean {
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (code <= 0x20 || code === 0x7f || URL_DELIMITERS.has(ch)) return true;
  }
  return false;
}

/**
 * The canonical form of `input`, or undefined when it is not a usable host.
 * IDN names become punycode (`url.domainToASCII`), which also applies the
 * WHATWG host rules: "0x7f.1" and "2130706433" are the IPv4 address 127.0.0.1
 * there, exactly as the resolver would read them, so they are treated as
 * address literals and not as names.
 */
export function canonicalHost(input: string): CanonicalHost | undefined {
  let s = input.trim();
  if (s === "" || s.length > 255) return undefined;
  if (s.startsWith("[") && s.endsWith("]")) {
    s = s.slice(1, -1);
    if (isIP(s) !== 6) return undefined;
  }
  if (isIP(s) === 6) {
    // URL parsing gives the compressed lowercase form; zone ids ("%eth0") are refused by it, which is what we want.
    try {
      return { kind: "ipv6", host: new URL(`http://[${s}]/`).hostname.slice(1, -1) };
    } catch {
      return undefined;
    }
  }
  // domainToASCII parses a whole URL host: it would cut "a/b" to "a" and decode "%41". Refuse such input first.
  if (hasUrlDelimiter(s)) return undefined;
  const ascii = domainToASCII(s);
  if (ascii === "") return undefined;
  if (isIP(ascii) === 4) return { kind: "ipv4", host: ascii };
  const name = ascii.endsWith(".") ? ascii.slice(0, -1) : ascii;
  if (name === "" || name.length > 253 || !name.split(".").every((l) => LABEL.test(l))) return undefined;
  return { kind: "name", host: name };
}

/** One compiled entry of an allow-list. */
export interface AllowEntry {
  /** The entry as the policy wrote it, for messages. */
  text: string;
  kind: "exact" | "wildcard" | "address";
  /** Canonical host; for a wildcard the suffix after "*." (the entry matches names ending in "." + host). */
  host: string;
  /** Allowed ports: the entry's own port, or DEFAULT_PORTS. */
  ports: readonly number[];
}

/** A sandbox's allowed domains, compiled once per setPolicy. `invalid` keeps the entries that were ignored. */
export interface AllowList {
  entries: AllowEntry[];
  invalid: string[];
}

/**
 * Compile allow-list entries. Accepted forms:
 * `api.example.com`, `*.example.org` (any subdomain, at any depth, but NOT
 * `example.org` itself: list both to allow both), either with `:port` to allow
 * that port instead of 80/443, and address literals (`203.0.113.7`,
 * `[2001:db8::1]:8443`), which are the only way an IP-literal target is allowed.
 */
export function compileAllowList(domains: readonly string[]): AllowList {
  const entries: AllowEntry[] = [];
  const invalid: string[] = [];
  for (const text of domains) {
    const entry = compileEntry(text);
    if (entry) entries.push(entry);
    else invalid.push(text);
  }
  return { entries, invalid };
}

function compileEntry(text: string): AllowEntry | undefined {
  const split = splitHostPort(text.trim());
  if (!split) return undefined;
  const ports = split.port === undefined ? DEFAULT_PORTS : [split.port];
  if (split.host.startsWith("*.")) {
    const suffix = canonicalHost(split.host.slice(2));
    return suffix?.kind === "name" ? { text, kind: "wildcard", host: suffix.host, ports } : undefined;
  }
  const c = canonicalHost(split.host);
  if (!c) return undefined;
  return { text, kind: c.kind === "name" ? "exact" : "address", host: c.host, ports };
}

/**
 * Split "host:port", "[v6]:port", a bare IPv6 address or a bare host.
 * Returns undefined for a malformed port; `port` is undefined when none was given.
 */
export function splitHostPort(s: string): { host: string; port: number | undefined } | undefined {
  const bracketed = /^\[([^\]]*)\](?::(\d+))?$/.exec(s);
  if (bracketed) return withPort(`[${bracketed[1]}]`, bracketed[2]);
  if (isIP(s) === 6) return { host: s, port: undefined };
  const colon = s.lastIndexOf(":");
  if (colon === -1) return { host: s, port: undefined };
  return withPort(s.slice(0, colon), s.slice(colon + 1));
}

function withPort(host: string, port: string | undefined): { host: string; port: number | undefined } | undefined {
  if (port === undefined) return { host, port: undefined };
  const n = parsePort(port);
  return n === undefined ? undefined : { host, port: n };
}

/** A TCP port 1-65535 from decimal text, or undefined. */
export function parsePort(s: string): number | undefined {
  if (!/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** Why a target is refused by the allow-list. */
export type MatchRefusal = "domain" | "port" | "ip-literal";

/** The verdict of the allow-list on one target. */
export type MatchResult = { allowed: true; entry: AllowEntry } | { allowed: false; reason: MatchRefusal; portsForHost: number[] };

/** Check `target:port` against `list`. A name matched by an entry but on another port is refused with reason "port". */
export function matchTarget(list: AllowList, target: CanonicalHost, port: number): MatchResult {
  const portsForHost: number[] = [];
  for (const entry of list.entries) {
    if (!entryMatchesHost(entry, target)) continue;
    if (entry.ports.includes(port)) return { allowed: true, entry };
    portsForHost.push(...entry.ports);
  }
  if (portsForHost.length > 0) return { allowed: false, reason: "port", portsForHost: [...new Set(portsForHost)].sort((a, b) => a - b) };
  return { allowed: false, reason: target.kind === "name" ? "domain" : "ip-literal", portsForHost };
}

function entryMatchesHost(entry: AllowEntry, target: CanonicalHost): boolean {
  switch (entry.kind) {
    case "exact":
      return target.kind === "name" && target.host === entry.host;
    case "wildcard":
      // At least one label before the suffix: "*.example.org" does not match "example.org".
      return target.kind === "name" && target.host.endsWith(`.${entry.host}`);
    case "address":
      return target.kind !== "name" && target.host === entry.host;
  }
}

/** The host as it appears in an authority ("host:port", IPv6 in brackets). */
export function formatAuthority(target: CanonicalHost, port: number): string {
  return `${target.kind === "ipv6" ? `[${target.host}]` : target.host}:${port}`;
}
