/**
 * From a validated policy to what the rules need: host names resolved (once,
 * at apply time), rules expanded into disjoint set elements, and the warnings a
 * caller must show (disabled mode, rules that cannot take effect).
 */
import { lookup } from "node:dns/promises";
import { parseCidr, type Cidr } from "./cidr.js";
import { disjointElements, PROTO_TCP, PROTO_UDP, type AllowEntry, type SetElement } from "./elements.js";
import { FirewallError } from "./errors.js";
import type { AllowRule, NetworkRules } from "./policy.js";

const ALL_PROTOS: [number, number] = [0, 255];
const ALL_PORTS: [number, number] = [0, 65535];
const DNS_PORT = 53;

/** Addresses of each `host` rule, by rule index. */
export type Resolved = Map<number, string[]>;

/** Look up every `host` rule's IPv4 addresses; E_FIREWALL_INVALID_RULE when a name does not resolve (fail closed). */
export async function resolveHosts(rules: NetworkRules, resolve: (host: string) => Promise<string[]> = lookupIpv4): Promise<Resolved> {
  const out: Resolved = new Map();
  await Promise.all(
    rules.allow.map(async (r, i) => {
      if (r.host === undefined) return;
      try {
        out.set(i, await resolve(r.host));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        throw new FirewallError("E_FIREWALL_INVALID_RULE", `allow[${i}].host "${r.host}" could not be resolved (${code}): check the name, or allow the address with "cidr".`, { cause: err });
      }
    }),
  );
  return out;
}

async function lookupIpv4(host: string): Promise<string[]> {
  const addrs = await lookup(host, { all: true, family: 4 });
  return [...new Set(addrs.map((a) => a.address))];
}

/** Set elements of a sandbox and the warnings that go with them. */
export interface RuleElements {
  allow: SetElement[];
  host: SetElement[];
  warnings: string[];
}

/** Expand a policy into the sandbox's egress and host set elements. */
export function ruleElements(rules: NetworkRules, resolved: Resolved, opts: { sandboxId: string; hostAddress: string; proxyPort: number }): RuleElements {
  const warnings: string[] = [];
  const allow: AllowEntry[] = [];
  rules.allow.forEach((r, i) => {
    const targets = r.cidr !== undefined ? [r.cidr] : (resolved.get(i) ?? []);
    if (r.host !== undefined && targets.length === 0) warnings.push(`allow[${i}].host "${r.host}" has no IPv4 address, so this rule allows nothing.`);
    for (const t of targets) {
      const c = parseCidr(t);
      if ("error" in c) continue; // validated already; a resolver answer that is not an address is ignored
      if (c.family === 6) {
        warnings.push(`allow[${i}] "${t}" is IPv6: sandboxes get IPv4 only for now, so this rule has no effect.`);
        continue;
      }
      allow.push(...entries(c, r));
    }
  });
  const dns: AllowEntry[] = [];
  for (const s of rules.dns?.servers ?? []) {
    const c = parseCidr(s);
    if ("error" in c) continue;
    if (c.family === 6) warnings.push(`dns server "${s}" is IPv6: sandboxes get IPv4 only for now, so it cannot be reached.`);
    else dns.push(...[PROTO_UDP, PROTO_TCP].map((p): AllowEntry => ({ cidr: c, protos: [p, p], ports: [DNS_PORT, DNS_PORT] })));
  }
  const host: AllowEntry[] = [...dns];
  if (rules.domains.length > 0) {
    const proxy = parseCidr(opts.hostAddress) as Cidr;
    host.push({ cidr: proxy, protos: [PROTO_TCP, PROTO_TCP], ports: [opts.proxyPort, opts.proxyPort] });
  }
  if (rules.mode === "disabled") {
    warnings.unshift(
      `Network mode "disabled" for sandbox ${opts.sandboxId}: its egress is NOT filtered, it can reach any address (only services on this host stay blocked). Use "test" to log without blocking, or "enforce".`,
    );
  } else if (rules.mode === "test") {
    warnings.unshift(`Network mode "test" for sandbox ${opts.sandboxId}: traffic outside the policy is allowed, counted and logged as "lg-would-deny"; switch to "enforce" to block it.`);
  }
  return { allow: disjointElements([...allow, ...dns]), host: disjointElements(host), warnings };
}

/** The (block, protocols, ports) triples of one rule for one target. */
function entries(cidr: Cidr, r: AllowRule): AllowEntry[] {
  const ports: [number, number][] = r.ports.length > 0 ? r.ports.map((p) => [p.from, p.to]) : [ALL_PORTS];
  // "any" without ports is every protocol; with ports it can only mean those with ports we filter on.
  const protos: [number, number][] = r.proto === "tcp" ? [[PROTO_TCP, PROTO_TCP]] : r.proto === "udp" ? [[PROTO_UDP, PROTO_UDP]] : r.ports.length > 0 ? [[PROTO_TCP, PROTO_TCP], [PROTO_UDP, PROTO_UDP]] : [ALL_PROTOS];
  return protos.flatMap((pr) => ports.map((po): AllowEntry => ({ cidr, protos: pr, ports: po })));
}
