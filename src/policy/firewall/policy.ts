/**
 * The network policy of a sandbox: `"none"` (no network at all, the default) or
 * an allow-list. Validated once at the edge (config file, `--net` flag) and
 * normalized, so the rule generator never sees a bad CIDR or a backwards range.
 *
 * `"none"` versus an object is decided by hand rather than with `z.union`: a
 * union reports only "Invalid input" when both sides fail, and a policy author
 * needs to be told which rule is wrong and why.
 */
import { domainToASCII } from "node:url";
import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";
import { ipFamily, parseCidr } from "./cidr.js";
import { FirewallError } from "./errors.js";

z.config(en());

/** enforce: drop what is not allowed; test: allow it but log and count it; disabled: no filtering at all. */
export type NetworkMode = "enforce" | "test" | "disabled";
/** "any" without ports means every protocol; with ports it means TCP and UDP on those ports. */
export type Proto = "tcp" | "udp" | "any";

/** An inclusive port range; a single port has from === to. */
export interface PortRange {
  from: number;
  to: number;
}

/** One allowed destination. Exactly one of `cidr` (canonical, e.g. "10.0.0.5/32") and `host` (a name resolved at apply time) is set. */
export interface AllowRule {
  cidr?: string;
  host?: string;
  /** Empty means every port. */
  ports: PortRange[];
  proto: Proto;
}

/** A validated, normalized allow-list policy. */
export interface NetworkRules {
  mode: NetworkMode;
  allow: AllowRule[];
  /** Lowercase ASCII names; a leading "*." matches any subdomain (not the bare domain). Reached only through the egress proxy. */
  domains: string[];
  /** Resolvers the sandbox may query on port 53 (UDP and TCP). Without it, no DNS at all. */
  dns?: { servers: string[] };
}

/** A sandbox's network: "none" or an allow-list. */
export type NetworkPolicy = "none" | NetworkRules;

const allowShape = z.strictObject({
  cidr: z.optional(z.string()),
  host: z.optional(z.string()),
  ports: z.optional(z.array(z.union([z.number(), z.string()]))),
  proto: z.optional(z.enum(["tcp", "udp", "any"])),
});

const rulesShape = z.strictObject({
  mode: z.optional(z.enum(["enforce", "test", "disabled"])),
  allow: z.optional(z.array(allowShape)),
  domains: z.optional(z.array(z.string())),
  dns: z.optional(z.strictObject({ servers: z.array(z.string()) })),
});

type Path = (string | number)[];

/** Names in this range need no punycode conversion (anything else invalid is caught by the label rules). */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
type Report = (path: Path, message: string) => void;

/** The policy schema; embed it in the config at `sandbox.network` (with `z._default(..., "none")`). */
export const networkPolicySchema = z.pipe(
  z.unknown(),
  z.transform((raw: unknown, ctx): NetworkPolicy => {
    let failed = false;
    const report: Report = (path, message) => {
      failed = true;
      ctx.issues.push({ code: "custom", message, input: raw, path });
    };
    const result = normalize(raw, report);
    return failed || result === undefined ? z.NEVER : result;
  }),
);

/** Validate and normalize a raw policy; throws E_FIREWALL_INVALID_RULE with every problem on one line. */
export function parseNetworkPolicy(raw: unknown): NetworkPolicy {
  const result = networkPolicySchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => (i.path.length > 0 ? `${formatPath(i.path as Path)}: ${i.message}` : i.message));
  throw new FirewallError("E_FIREWALL_INVALID_RULE", `Invalid network policy: ${problems.join("; ")}`, { details: { problems } });
}

/** "allow[0].ports[1]" for ["allow", 0, "ports", 1]. */
export function formatPath(path: Path): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

function normalize(raw: unknown, report: Report): NetworkPolicy | undefined {
  if (raw === undefined || raw === null || raw === "none") return "none";
  if (typeof raw !== "object" || Array.isArray(raw)) {
    report([], `a network policy is "none" or an object like {"allow": [{"cidr": "10.0.0.0/8", "ports": [443]}]}, not ${JSON.stringify(raw)}`);
    return undefined;
  }
  const shaped = rulesShape.safeParse(raw);
  if (!shaped.success) {
    for (const issue of shaped.error.issues) report(issue.path as Path, issue.message);
    return undefined;
  }
  const r = shaped.data;
  const rules: NetworkRules = {
    mode: r.mode ?? "enforce",
    allow: (r.allow ?? []).flatMap((a, i) => allowRule(a, ["allow", i], report) ?? []),
    domains: dedupe((r.domains ?? []).flatMap((d, i) => domainPattern(d, ["domains", i], report) ?? [])),
  };
  if (r.dns) {
    if (r.dns.servers.length === 0) report(["dns", "servers"], 'list at least one resolver address, or leave out "dns" for no DNS at all');
    const servers = r.dns.servers.flatMap((s, i) => {
      if (ipFamily(s) !== undefined) return [s.toLowerCase()];
      report(["dns", "servers", i], `"${s}" is not an IP address: resolvers are given by address (e.g. "10.0.0.53")`);
      return [];
    });
    rules.dns = { servers: dedupe(servers) };
  }
  return rules;
}

function allowRule(a: z.infer<typeof allowShape>, path: Path, report: Report): AllowRule | undefined {
  if ((a.cidr === undefined) === (a.host === undefined)) {
    report(path, 'give exactly one of "cidr" (an address or block) and "host" (a name or address)');
    return undefined;
  }
  const proto = a.proto ?? "tcp";
  let ok = true;
  const ports: PortRange[] = [];
  if (a.ports !== undefined && a.ports.length === 0) {
    report([...path, "ports"], 'the list is empty: leave out "ports" to allow every port');
    ok = false;
  }
  (a.ports ?? []).forEach((p, i) => {
    const range = portRange(p);
    if (typeof range === "string") {
      report([...path, "ports", i], range);
      ok = false;
    } else ports.push(range);
  });
  let target: { cidr: string } | { host: string } | undefined;
  if (a.cidr !== undefined) {
    const c = parseCidr(a.cidr);
    if ("error" in c) report([...path, "cidr"], c.error);
    else target = { cidr: c.text };
  } else {
    const host = a.host!;
    // An address given as a host needs no lookup: keep it as a one-address block.
    const c = ipFamily(host) !== undefined ? parseCidr(host) : undefined;
    if (c && !("error" in c)) target = { cidr: c.text };
    else {
      const name = host.toLowerCase().replace(/\.$/, "");
      const error = hostnameProblem(name, JSON.stringify(host), false);
      if (error) report([...path, "host"], error);
      else target = { host: PRINTABLE_ASCII.test(name) ? name : domainToASCII(name) };
    }
  }
  return ok && target ? { ...target, ports, proto } : undefined;
}

function portRange(p: number | string): PortRange | string {
  const inRange = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;
  if (typeof p === "number") {
    if (!Number.isInteger(p)) return `port ${p} is not a whole number`;
    return inRange(p) ? { from: p, to: p } : `port ${p} is out of range: ports are 1-65535`;
  }
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(p.trim());
  if (!m) return `"${p}" is not a port or range: write 443 or "8000-8100"`;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (!inRange(from) || !inRange(to)) return `"${p}" is out of range: ports are 1-65535`;
  if (from > to) return `port range "${p}" is backwards: write "${to}-${from}"`;
  return { from, to };
}

function domainPattern(d: string, path: Path, report: Report): string | undefined {
  const lower = d.toLowerCase().replace(/\.$/, "");
  const wildcard = lower.startsWith("*.");
  const name = wildcard ? lower.slice(2) : lower;
  const problem = name.includes("*")
    ? `"${d}" has a "*" that is not a leading "*.": only "*.example.com" style wildcards are supported`
    : hostnameProblem(name, JSON.stringify(d), true);
  if (problem) {
    report(path, problem);
    return undefined;
  }
  const ascii = domainToASCII(name);
  if (ascii === "") {
    report(path, `"${d}" is not a valid domain name`);
    return undefined;
  }
  if (ascii.split(".").length < 2) {
    report(path, `"${d}" ${wildcard ? "would allow a whole top-level domain" : "is a single label"}: write a full name like "api.example.com"`);
    return undefined;
  }
  return wildcard ? `*.${ascii}` : ascii;
}

/** Why `name` (lowercased) is not a usable host name, or undefined when it is; `q` is how messages quote it. */
function hostnameProblem(name: string, q: string, forDomains: boolean): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(name)) return `${q} has a scheme: write only the host name, e.g. "${name.replace(/^[a-z0-9+.-]*:\/\//, "").split(/[/:]/)[0]}"`;
  if (forDomains && ipFamily(name) !== undefined) return `${q} is an IP address: put addresses in "allow" as {"cidr": "${name}"}`;
  if (name.includes("/")) return `${q} has a path: write only the host name, e.g. "${name.split("/")[0]}"`;
  if (name.includes(":")) return `${q} has a port: ${forDomains ? "write only the name (domains are reached through the egress proxy, which decides the ports)" : 'put ports in "ports"'}`;
  if (name === "" || name.length > 253) return `${q} is not a valid host name (1-253 characters)`;
  // Non-ASCII names are allowed and stored as punycode; the label rules apply to that form.
  const ascii = PRINTABLE_ASCII.test(name) ? name : domainToASCII(name);
  const bad = ascii.split(".").find((l) => !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l));
  if (ascii === "" || bad !== undefined) return `${q} is not a valid host name: labels are letters, digits and inner hyphens, 1-63 characters, separated by dots`;
  return undefined;
}

function dedupe(items: string[]): string[] {
  return [...new Set(items)];
}
