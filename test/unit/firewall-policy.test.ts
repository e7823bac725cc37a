import * as z from "zod/mini";
import { describe, expect, it } from "vitest";
import { networkPolicySchema, parseNetworkPolicy } from "../../src/policy/firewall/policy.js";

const invalid = (raw: unknown) => {
  try {
    parseNetworkPolicy(raw);
  } catch (err) {
    expect(err).toMatchObject({ code: "E_FIREWALL_INVALID_RULE", name: "FirewallError" });
    return (err as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be rejected`);
};

describe("parseNetworkPolicy: valid policies", () => {
  it('treats "none" and a missing policy as no network', () => {
    expect(parseNetworkPolicy("none")).toBe("none");
    expect(parseNetworkPolicy(undefined)).toBe("none");
  });

  it("fills in defaults and normalizes rules", () => {
    expect(
      parseNetworkPolicy({
        allow: [
          { cidr: "10.1.2.3", ports: [443, "8000-8100", "53"] },
          { host: "10.9.0.0", proto: "any" },
          { host: "Registry.Example.com." },
          { cidr: "2001:db8::/32", proto: "udp", ports: [500] },
        ],
        domains: ["API.example.com", "*.example.org", "api.example.com", "bücher.example"],
        dns: { servers: ["10.0.0.53", "10.0.0.53"] },
      }),
    ).toEqual({
      mode: "enforce",
      allow: [
        {
          cidr: "10.1.2.3/32",
          ports: [
            { from: 443, to: 443 },
            { from: 8000, to: 8100 },
            { from: 53, to: 53 },
          ],
          proto: "tcp",
        },
        { cidr: "10.9.0.0/32", ports: [], proto: "any" },
        { host: "registry.example.com", ports: [], proto: "tcp" },
        { cidr: "2001:db8::/32", ports: [{ from: 500, to: 500 }], proto: "udp" },
      ],
      domains: ["api.example.com", "*.example.org", "xn--bcher-kva.example"],
      dns: { servers: ["10.0.0.53"] },
    });
  });

  it("keeps the mode", () => {
    expect(parseNetworkPolicy({ mode: "test" })).toEqual({ mode: "test", allow: [], domains: [] });
    expect(parseNetworkPolicy({ mode: "disabled" })).toMatchObject({ mode: "disabled" });
  });
});

describe("parseNetworkPolicy: one clear line per mistake", () => {
  it.each([
    ["nne", 'Invalid network policy: a network policy is "none" or an object like {"allow": [{"cidr": "10.0.0.0/8", "ports": [443]}]}, not "nne"'],
    [[], 'Invalid network policy: a network policy is "none" or an object like {"allow": [{"cidr": "10.0.0.0/8", "ports": [443]}]}, not []'],
    [{ bogus: 1 }, 'Invalid network policy: Unrecognized key: "bogus"'],
    [{ mode: "x" }, 'Invalid network policy: mode: Invalid option: expected one of "enforce"|"test"|"disabled"'],
    [{ allow: [{ cidr: "10.0.0.5/24" }] }, 'Invalid network policy: allow[0].cidr: "10.0.0.5/24" has host bits set: write "10.0.0.0/24"'],
    [{ allow: [{ cidr: "10.0.0.0/33" }] }, 'Invalid network policy: allow[0].cidr: "10.0.0.0/33" has prefix length 33, but IPv4 allows at most 32'],
    [{ allow: [{ cidr: "10.0.0.0/x" }] }, 'Invalid network policy: allow[0].cidr: "10.0.0.0/x" has an invalid prefix length: write a number 0-32 after the "/"'],
    [{ allow: [{ cidr: "nope" }] }, 'Invalid network policy: allow[0].cidr: "nope" is not an IP address or CIDR block (e.g. "10.1.0.0/16" or "2001:db8::/32")'],
    [{ allow: [{ cidr: "2001:db8::1/32" }] }, 'Invalid network policy: allow[0].cidr: "2001:db8::1/32" has host bits set: write "2001:db8::/32"'],
    [{ allow: [{ cidr: "10.0.0.0/8", host: "a.example" }] }, 'Invalid network policy: allow[0]: give exactly one of "cidr" (an address or block) and "host" (a name or address)'],
    [{ allow: [{ cidr: "10.0.0.1", ports: [] }] }, 'Invalid network policy: allow[0].ports: the list is empty: leave out "ports" to allow every port'],
    [{ allow: [{ cidr: "10.0.0.1", proto: "icmp" }] }, 'Invalid network policy: allow[0].proto: Invalid option: expected one of "tcp"|"udp"|"any"'],
    [{ allow: [{ host: "https://x.example/a" }] }, 'Invalid network policy: allow[0].host: "https://x.example/a" has a scheme: write only the host name, e.g. "x.example"'],
    [{ allow: [{ host: "bad_host" }] }, 'Invalid network policy: allow[0].host: "bad_host" is not a valid host name: labels are letters, digits and inner hyphens, 1-63 characters, separated by dots'],
    [{ dns: { servers: [] } }, 'Invalid network policy: dns.servers: list at least one resolver address, or leave out "dns" for no DNS at all'],
    [{ dns: { servers: ["dns.example"] } }, 'Invalid network policy: dns.servers[0]: "dns.example" is not an IP address: resolvers are given by address (e.g. "10.0.0.53")'],
  ])("%j", (raw, message) => {
    expect(invalid(raw)).toBe(message);
  });

  it("reports every bad port with its place", () => {
    expect(invalid({ allow: [{ cidr: "10.0.0.1", ports: [0, 70000, "90-80", "80:90", 1.5] }] })).toBe(
      "Invalid network policy: " +
        [
          "allow[0].ports[0]: port 0 is out of range: ports are 1-65535",
          "allow[0].ports[1]: port 70000 is out of range: ports are 1-65535",
          'allow[0].ports[2]: port range "90-80" is backwards: write "80-90"',
          'allow[0].ports[3]: "80:90" is not a port or range: write 443 or "8000-8100"',
          "allow[0].ports[4]: port 1.5 is not a whole number",
        ].join("; "),
    );
  });

  it.each([
    ["https://api.example.com/v1", 'domains[0]: "https://api.example.com/v1" has a scheme: write only the host name, e.g. "api.example.com"'],
    ["api.example.com/v1", 'domains[0]: "api.example.com/v1" has a path: write only the host name, e.g. "api.example.com"'],
    ["api.*.com", 'domains[0]: "api.*.com" has a "*" that is not a leading "*.": only "*.example.com" style wildcards are supported'],
    ["*", 'domains[0]: "*" has a "*" that is not a leading "*.": only "*.example.com" style wildcards are supported'],
    ["*.com", 'domains[0]: "*.com" would allow a whole top-level domain: write a full name like "api.example.com"'],
    ["localhost", 'domains[0]: "localhost" is a single label: write a full name like "api.example.com"'],
    ["1.2.3.4", 'domains[0]: "1.2.3.4" is an IP address: put addresses in "allow" as {"cidr": "1.2.3.4"}'],
    ["api.example.com:443", 'domains[0]: "api.example.com:443" has a port: write only the name (domains are reached through the egress proxy, which decides the ports)'],
    ["-x.example.com", 'domains[0]: "-x.example.com" is not a valid host name: labels are letters, digits and inner hyphens, 1-63 characters, separated by dots'],
  ])("rejects the domain pattern %j", (domain, message) => {
    expect(invalid({ domains: [domain] })).toBe(`Invalid network policy: ${message}`);
  });
});

describe("networkPolicySchema inside another schema", () => {
  it("reports issues at their full path, with a default of none", () => {
    const config = z.strictObject({ sandbox: z.strictObject({ network: z._default(networkPolicySchema, "none") }) });
    expect(config.parse({ sandbox: {} })).toEqual({ sandbox: { network: "none" } });
    const r = config.safeParse({ sandbox: { network: { allow: [{ cidr: "10.0.0.1", ports: ["x"] }] } } });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => [i.path.join("."), i.message])).toEqual([["sandbox.network.allow.0.ports.0", '"x" is not a port or range: write 443 or "8000-8100"']]);
  });
});
