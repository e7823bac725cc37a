import { describe, expect, it } from "vitest";
import { nftComplaint } from "../../src/policy/firewall/apply.js";
import { parseCidr, type Cidr } from "../../src/policy/firewall/cidr.js";
import { disjointElements, formatElement, type AllowEntry } from "../../src/policy/firewall/elements.js";
import { sandboxNames, shortOf } from "../../src/policy/firewall/names.js";
import { allObjects, attachScript, baseScript, releaseScript, sandboxScript } from "../../src/policy/firewall/nft.js";
import { parseNetworkPolicy, type NetworkRules } from "../../src/policy/firewall/policy.js";
import { nftSessionSpec } from "../../src/policy/firewall/session.js";
import { ruleElements } from "../../src/policy/firewall/spec.js";

const cidr = (s: string) => parseCidr(s) as Cidr;
const entry = (c: string, protos: [number, number], ports: [number, number]): AllowEntry => ({ cidr: cidr(c), protos, ports });
const texts = (entries: AllowEntry[]) => disjointElements(entries).map(formatElement);
const rules = (raw: unknown) => parseNetworkPolicy(raw) as NetworkRules;
const n = sandboxNames("1a2b3c4d");

describe("disjointElements", () => {
  it("keeps separate blocks apart and prints single values plainly", () => {
    expect(texts([entry("10.0.0.1/32", [6, 6], [443, 443]), entry("10.2.0.0/16", [17, 17], [5000, 5010])])).toEqual(["10.0.0.1 . tcp . 443", "10.2.0.0/16 . udp . 5000-5010"]);
  });

  it("drops rules inside a broader one", () => {
    expect(texts([entry("10.1.2.3/32", [6, 6], [443, 443]), entry("10.0.0.0/8", [0, 255], [0, 65535])])).toEqual(["10.0.0.0/8 . 0-255 . 0-65535"]);
  });

  it("cuts partly overlapping rules into boxes that do not overlap", () => {
    // The kernel refuses an element whose corner lies inside another: 10.1.0.0/16 tcp 85-100 inside 10.0.0.0/8 tcp 80-90.
    expect(texts([entry("10.0.0.0/8", [6, 6], [80, 90]), entry("10.1.0.0/16", [6, 6], [85, 100])])).toEqual(["10.0.0.0/8 . tcp . 80-90", "10.1.0.0/16 . tcp . 91-100"]);
  });

  it("merges neighbouring port ranges and protocols with the same blocks", () => {
    expect(texts([entry("10.0.0.0/8", [6, 6], [80, 90]), entry("10.0.0.0/8", [6, 6], [91, 100]), entry("10.0.0.0/8", [17, 17], [80, 100])])).toEqual(["10.0.0.0/8 . tcp . 80-100", "10.0.0.0/8 . udp . 80-100"]);
    expect(texts([entry("10.0.0.0/8", [0, 5], [0, 65535]), entry("10.0.0.0/8", [6, 6], [0, 65535]), entry("10.0.0.0/8", [7, 255], [0, 65535])])).toEqual(["10.0.0.0/8 . 0-255 . 0-65535"]);
  });

  it("splits a protocol range around a narrower rule of another block in the same cluster", () => {
    expect(texts([entry("10.0.0.0/24", [0, 255], [0, 65535]), entry("10.0.0.0/8", [6, 6], [443, 443])])).toEqual([
      "10.0.0.0/24 . 0-5 . 0-65535",
      "10.0.0.0/24 . tcp . 0-442",
      "10.0.0.0/8 . tcp . 443",
      "10.0.0.0/24 . tcp . 444-65535",
      "10.0.0.0/24 . 7-255 . 0-65535",
    ]);
  });

  it("ignores IPv6 blocks (sandboxes have no IPv6)", () => {
    expect(texts([entry("2001:db8::/32", [6, 6], [443, 443])])).toEqual([]);
  });
});

describe("ruleElements", () => {
  const opts = { sandboxId: "sb-x", hostAddress: "10.203.0.1", proxyPort: 3128 };

  it("expands proto any, ports, DNS and the proxy", () => {
    const r = ruleElements(
      rules({
        allow: [
          { cidr: "10.204.1.0/24", ports: [443, "8000-8100"] },
          { cidr: "10.204.1.7", ports: ["8050-9000"] },
          { cidr: "10.9.0.0/16", proto: "any" },
          { cidr: "10.9.3.4", proto: "udp", ports: [53] },
          { cidr: "10.8.0.1", proto: "any", ports: [7] },
        ],
        dns: { servers: ["10.204.1.53"] },
        domains: ["api.example.com"],
      }),
      new Map(),
      opts,
    );
    expect(r.allow.map(formatElement)).toEqual([
      "10.8.0.1 . tcp . 7",
      "10.8.0.1 . udp . 7",
      "10.9.0.0/16 . 0-255 . 0-65535",
      "10.204.1.53 . tcp . 53",
      "10.204.1.0/24 . tcp . 443",
      "10.204.1.0/24 . tcp . 8000-8100",
      "10.204.1.7 . tcp . 8101-9000",
      "10.204.1.53 . udp . 53",
    ]);
    expect(r.host.map(formatElement)).toEqual(["10.203.0.1 . tcp . 3128", "10.204.1.53 . tcp . 53", "10.204.1.53 . udp . 53"]);
    expect(r.warnings).toEqual([]);
  });

  it("uses resolved addresses for host rules and warns about what cannot work", () => {
    const r = ruleElements(rules({ allow: [{ host: "db.example.com", ports: [5432] }, { host: "v6only.example.com" }, { cidr: "2001:db8::/32" }], dns: { servers: ["2001:db8::53"] } }), new Map([[0, ["10.5.0.1", "10.5.0.2"]], [1, []]]), opts);
    expect(r.allow.map(formatElement)).toEqual(["10.5.0.1 . tcp . 5432", "10.5.0.2 . tcp . 5432"]);
    expect(r.host).toEqual([]);
    expect(r.warnings).toEqual([
      'allow[1].host "v6only.example.com" has no IPv4 address, so this rule allows nothing.',
      'allow[2] "2001:db8::/32" is IPv6: sandboxes get IPv4 only for now, so this rule has no effect.',
      'dns server "2001:db8::53" is IPv6: sandboxes get IPv4 only for now, so it cannot be reached.',
    ]);
  });

  it("warns loudly about disabled and test mode", () => {
    expect(ruleElements(rules({ mode: "disabled" }), new Map(), opts).warnings).toEqual([
      'Network mode "disabled" for sandbox sb-x: its egress is NOT filtered, it can reach any address (only services on this host stay blocked). Use "test" to log without blocking, or "enforce".',
    ]);
    expect(ruleElements(rules({ mode: "test" }), new Map(), opts).warnings[0]).toMatch(/^Network mode "test" for sandbox sb-x: .*lg-would-deny/);
  });
});

describe("nft scripts", () => {
  const T = "inet luminaguard";
  const spec = {
    names: n,
    sandboxAddress: "10.203.0.2",
    mode: "enforce" as const,
    allow: disjointElements([entry("10.204.1.0/24", [6, 6], [443, 443]), entry("10.204.1.53/32", [17, 17], [53, 53])]),
    host: disjointElements([entry("10.203.0.1/32", [6, 6], [3128, 3128])]),
  };
  const KEY = "ip daddr . meta l4proto . th dport";

  it("builds the base: only lgh* traffic is touched, every policy accepts", () => {
    expect(baseScript()).toBe(
      [
        `add table ${T}`,
        `add chain ${T} forward { type filter hook forward priority filter; policy accept; }`,
        `add chain ${T} input { type filter hook input priority filter; policy accept; }`,
        `add chain ${T} output { type filter hook output priority filter; policy accept; }`,
        `add chain ${T} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
        `add map ${T} forward_map { type ifname : verdict; }`,
        `add map ${T} input_map { type ifname : verdict; }`,
        `add set ${T} masquerade_src { type ipv4_addr; }`,
        `flush chain ${T} forward`,
        `add rule ${T} forward oifname "lgh*" ct state established,related accept`,
        `add rule ${T} forward oifname "lgh*" drop`,
        `add rule ${T} forward iifname "lgh*" iifname vmap @forward_map`,
        `add rule ${T} forward iifname "lgh*" drop`,
        `flush chain ${T} input`,
        `add rule ${T} input iifname "lgh*" iifname vmap @input_map`,
        `add rule ${T} input iifname "lgh*" drop`,
        `flush chain ${T} output`,
        `add rule ${T} output oifname "lgh*" ct state new drop`,
        `flush chain ${T} postrouting`,
        `add rule ${T} postrouting oifname != "lgh*" ip saddr @masquerade_src masquerade`,
        "",
      ].join("\n"),
    );
  });

  it("builds an enforcing sandbox", () => {
    expect(attachScript(spec, { withBase: false })).toBe(
      [
        `add chain ${T} sb_1a2b3c4d`,
        `add chain ${T} sb_1a2b3c4d_in`,
        `add set ${T} sb_1a2b3c4d_allow { type ipv4_addr . inet_proto . inet_service; flags interval; }`,
        `add set ${T} sb_1a2b3c4d_host { type ipv4_addr . inet_proto . inet_service; flags interval; }`,
        `add set ${T} sb_1a2b3c4d_acc { type ipv4_addr . inet_proto . inet_service; size 4096; flags dynamic; }`,
        `add set ${T} sb_1a2b3c4d_den { type ipv4_addr . inet_proto . inet_service; size 4096; flags dynamic; }`,
        `add counter ${T} sb_1a2b3c4d_allowed`,
        `add counter ${T} sb_1a2b3c4d_denied`,
        `flush chain ${T} sb_1a2b3c4d`,
        `flush chain ${T} sb_1a2b3c4d_in`,
        `flush set ${T} sb_1a2b3c4d_allow`,
        `flush set ${T} sb_1a2b3c4d_host`,
        `add element ${T} sb_1a2b3c4d_allow { 10.204.1.0/24 . tcp . 443, 10.204.1.53 . udp . 53 }`,
        `add element ${T} sb_1a2b3c4d_host { 10.203.0.1 . tcp . 3128 }`,
        `add rule ${T} sb_1a2b3c4d meta nfproto ipv6 drop`,
        `add rule ${T} sb_1a2b3c4d ip saddr != 10.203.0.2 drop`,
        `add rule ${T} sb_1a2b3c4d ct state new ${KEY} @sb_1a2b3c4d_allow counter name "sb_1a2b3c4d_allowed" update @sb_1a2b3c4d_acc { ${KEY} counter }`,
        `add rule ${T} sb_1a2b3c4d ${KEY} @sb_1a2b3c4d_allow accept`,
        `add rule ${T} sb_1a2b3c4d ct state new counter name "sb_1a2b3c4d_denied" update @sb_1a2b3c4d_den { ${KEY} counter }`,
        `add rule ${T} sb_1a2b3c4d ct state new limit rate 10/second burst 20 packets log prefix "lg-deny 1a2b3c4d "`,
        `add rule ${T} sb_1a2b3c4d drop`,
        `add rule ${T} sb_1a2b3c4d_in meta nfproto ipv6 drop`,
        `add rule ${T} sb_1a2b3c4d_in ip saddr != 10.203.0.2 drop`,
        `add rule ${T} sb_1a2b3c4d_in ct state new ${KEY} @sb_1a2b3c4d_host counter name "sb_1a2b3c4d_allowed" update @sb_1a2b3c4d_acc { ${KEY} counter }`,
        `add rule ${T} sb_1a2b3c4d_in ${KEY} @sb_1a2b3c4d_host accept`,
        `add rule ${T} sb_1a2b3c4d_in ct state new counter name "sb_1a2b3c4d_denied" update @sb_1a2b3c4d_den { ${KEY} counter }`,
        `add rule ${T} sb_1a2b3c4d_in ct state new limit rate 10/second burst 20 packets log prefix "lg-deny 1a2b3c4d "`,
        `add rule ${T} sb_1a2b3c4d_in drop`,
        `add element ${T} forward_map { "lgh1a2b3c4d" : goto sb_1a2b3c4d }`,
        `add element ${T} input_map { "lgh1a2b3c4d" : goto sb_1a2b3c4d_in }`,
        `add element ${T} masquerade_src { 10.203.0.2 }`,
        "",
      ].join("\n"),
    );
    expect(attachScript(spec)).toBe(baseScript() + attachScript(spec, { withBase: false }));
  });

  it("test mode counts and logs as would-deny, then accepts; the host chain still drops", () => {
    const lines = sandboxScript({ ...spec, mode: "test" }).split("\n");
    expect(lines.filter((l) => l.startsWith(`add rule ${T} sb_1a2b3c4d `)).slice(-2)).toEqual([
      `add rule ${T} sb_1a2b3c4d ct state new limit rate 10/second burst 20 packets log prefix "lg-would-deny 1a2b3c4d "`,
      `add rule ${T} sb_1a2b3c4d accept`,
    ]);
    expect(lines.filter((l) => l.startsWith(`add rule ${T} sb_1a2b3c4d_in `)).at(-1)).toBe(`add rule ${T} sb_1a2b3c4d_in drop`);
  });

  it("disabled mode counts and accepts everything in the egress chain", () => {
    const lines = sandboxScript({ ...spec, mode: "disabled", allow: [] }).split("\n");
    expect(lines.filter((l) => l.startsWith(`add rule ${T} sb_1a2b3c4d `))).toEqual([
      `add rule ${T} sb_1a2b3c4d meta nfproto ipv6 drop`,
      `add rule ${T} sb_1a2b3c4d ip saddr != 10.203.0.2 drop`,
      `add rule ${T} sb_1a2b3c4d ct state new counter name "sb_1a2b3c4d_allowed" update @sb_1a2b3c4d_acc { ${KEY} counter }`,
      `add rule ${T} sb_1a2b3c4d accept`,
    ]);
    expect(lines).not.toContain(`add element ${T} sb_1a2b3c4d_allow {  }`);
  });

  it("removes a sandbox: map entries first, then chains, sets and counters", () => {
    expect(releaseScript(n, allObjects(n, "10.203.0.2"))).toBe(
      [
        `delete element ${T} forward_map { "lgh1a2b3c4d" }`,
        `delete element ${T} input_map { "lgh1a2b3c4d" }`,
        `delete element ${T} masquerade_src { 10.203.0.2 }`,
        `delete chain ${T} sb_1a2b3c4d`,
        `delete chain ${T} sb_1a2b3c4d_in`,
        `delete set ${T} sb_1a2b3c4d_allow`,
        `delete set ${T} sb_1a2b3c4d_host`,
        `delete set ${T} sb_1a2b3c4d_acc`,
        `delete set ${T} sb_1a2b3c4d_den`,
        `delete counter ${T} sb_1a2b3c4d_allowed`,
        `delete counter ${T} sb_1a2b3c4d_denied`,
        "",
      ].join("\n"),
    );
    expect(releaseScript(n, { forwardMapKey: false, inputMapKey: false, chains: ["sb_1a2b3c4d"], sets: [], counters: [] })).toBe(`delete chain ${T} sb_1a2b3c4d\n`);
  });

  it("joins a script into one line for nft -i (one line, one transaction)", () => {
    expect(nftSessionSpec("nft").encode("add table inet x\nadd chain inet x c { type filter hook input priority filter; policy accept; }\n")).toBe(
      "add table inet x; add chain inet x c { type filter hook input priority filter; policy accept; }\n",
    );
  });
});

describe("names", () => {
  it("fit Linux's 15-character interface names and map back to their short id", () => {
    expect(n).toMatchObject({ netns: "lg-1a2b3c4d", netnsPath: "/run/netns/lg-1a2b3c4d", hostIf: "lgh1a2b3c4d", sandboxIf: "lgs1a2b3c4d", chain: "sb_1a2b3c4d", inChain: "sb_1a2b3c4d_in" });
    expect(n.hostIf.length).toBeLessThanOrEqual(15);
    for (const name of [n.netns, n.hostIf, n.chain, n.inChain, n.allowSet, n.deniedCounter]) expect(shortOf(name)).toBe("1a2b3c4d");
    for (const name of ["lgprobe-1a2b3c4d", "sb_1a2b3c4", "lgt1a2b", "forward_map", "sb_1A2B3C4D"]) expect(shortOf(name)).toBeUndefined();
  });
});

describe("nftComplaint", () => {
  it("keeps nft's error and the command it points at", () => {
    expect(nftComplaint("Error: Could not process rule: No such file or directory\nadd rule inet x c counter\n           ^\n")).toBe("Error: Could not process rule: No such file or directory (in: add rule inet x c counter)");
  });

  it("picks the marked command out of a joined one-line script", () => {
    const line = "add table inet x; add rule inet x nochain counter; add set inet x s { type ipv4_addr; }";
    const carets = " ".repeat(line.indexOf("nochain")) + "^^^^^^^";
    expect(nftComplaint(`Error: Could not process rule: No such file or directory\n${line}\n${carets}\n`)).toBe("Error: Could not process rule: No such file or directory (in: add rule inet x nochain counter)");
  });
});
