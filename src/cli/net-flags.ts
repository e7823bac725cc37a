/**
 * Turning `exec`'s network flags into a raw policy object; the config schema
 * validates it (with the firewall's own messages) together with everything else.
 */
import { readFileSync } from "node:fs";
import { UsageError } from "../errors.js";

export interface NetFlags {
  net?: string;
  allow: string[];
  allowDomain: string[];
  dns: string[];
  netMode?: string;
}

/**
 * One `--allow` value: `DEST[:PORTS][/PROTO]` where DEST is an IP, a CIDR or a
 * host name ([v6] in brackets when ports follow) and PORTS is `443` or `8000-8100`
 * or a comma list.
 */
export function parseAllowFlag(value: string): Record<string, unknown> {
  const m = /^(\[[^\]]+\](?:\/\d+)?|[A-Za-z0-9._-]+(?:\/\d+)?|[0-9a-fA-F:]+(?:\/\d+)?)(?::([0-9,-]+))?(?:\/(tcp|udp|any))?$/.exec(value.trim());
  if (!m) throw new UsageError(`--allow needs DEST[:PORTS][/PROTO], e.g. 10.0.0.5:443 or 192.168.1.0/24:80-90/udp, got ${JSON.stringify(value)}.`);
  const dest = m[1]!.replace(/^\[|\]/g, "");
  const isAddress = /^[0-9.]+(\/\d+)?$/.test(dest) || dest.includes(":");
  const rule: Record<string, unknown> = isAddress ? { cidr: dest } : { host: dest };
  if (m[2]) rule.ports = m[2].split(",").map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  if (m[3]) rule.proto = m[3];
  return rule;
}

/** The raw `sandbox.network` value the flags describe, or undefined to keep the config file's. */
export function networkFromFlags(flags: NetFlags, fromConfig: unknown): unknown {
  let base: unknown = fromConfig;
  if (flags.net !== undefined) base = parseNetValue(flags.net);
  const extra = flags.allow.length + flags.allowDomain.length + flags.dns.length > 0 || flags.netMode !== undefined;
  if (!extra) return base;
  const rules: Record<string, unknown> = typeof base === "object" && base !== null ? { ...(base as Record<string, unknown>) } : {};
  if (flags.allow.length) rules.allow = [...((rules.allow as unknown[]) ?? []), ...flags.allow.map(parseAllowFlag)];
  if (flags.allowDomain.length) rules.domains = [...((rules.domains as unknown[]) ?? []), ...flags.allowDomain];
  if (flags.dns.length) rules.dns = { servers: flags.dns };
  if (flags.netMode) rules.mode = flags.netMode;
  return rules;
}

/** `--net none`, `--net '{"allow": [...]}'` or `--net @policy.json`. */
function parseNetValue(value: string): unknown {
  if (value === "none") return "none";
  let text = value;
  if (value.startsWith("@")) {
    try {
      text = readFileSync(value.slice(1), "utf8");
    } catch (err) {
      throw new UsageError(`Cannot read the network policy file ${value.slice(1)}: ${(err as Error).message}`);
    }
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new UsageError(`--net takes "none", a JSON policy or @FILE with one, e.g. --net '{"allow":[{"cidr":"10.0.0.5","ports":[443]}]}'.`);
  }
}
