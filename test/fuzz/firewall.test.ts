// Bad input to the network policy parser and the egress proxy's host matcher:
// random strings, IDN, ports and CIDRs. The parser gives a policy or
// E_FIREWALL_INVALID_RULE; a compiled allow-list never lets through a host that is
// not one of its entries or a subdomain of a wildcard entry, on an allowed port.
import { describe, expect, it } from "vitest";
import { parseNetworkPolicy } from "../../src/policy/firewall/policy.js";
import { FirewallError } from "../../src/policy/firewall/errors.js";
import { canonicalHost, compileAllowList, matchTarget, DEFAULT_PORTS } from "../../src/policy/firewall/proxy-match.js";
import { fc } from "./settings.js";

const label = fc.oneof(
  fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/),
  fc.constantFrom("xn--bcher-kva", "bücher", "ÉXAMPLE", "例え", "_dmarc", "-bad", "a..b", "0x7f", "127", "1"),
);
const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join("."));
const junk = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: "grapheme", maxLength: 20 }), fc.constantFrom("", "*", "*.", "*.*.a", "a/b", "a@b", "%41.com", "a b", "a\u0000b", "[::1", "::ffff:127.0.0.1", "2130706433", "0x7f.1", "example.com.", "EXAMPLE.COM"));
const host = fc.oneof(name, name.map((n) => n.toUpperCase()), name.map((n) => `${n}.`), fc.ipV4(), fc.ipV4Extended(), fc.ipV6().map((a) => `[${a}]`), fc.ipV6(), junk);
const port = fc.oneof(fc.integer({ min: -1, max: 70000 }).map(String), fc.constantFrom("", "0", "080", "65535", "65536", "1e3", " 80"));
const domainEntry = fc.oneof(host, host.map((h) => `*.${h}`), fc.tuple(host, port).map(([h, p]) => `${h}:${p}`), fc.tuple(host, port).map(([h, p]) => `*.${h}:${p}`));
const cidr = fc.oneof(fc.tuple(fc.ipV4(), fc.integer({ min: -1, max: 33 })).map(([a, n]) => `${a}/${n}`), fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 129 })).map(([a, n]) => `${a}/${n}`), fc.ipV4(), junk);
const allowRule = fc.record(
  { cidr: cidr, host: host, ports: fc.array(fc.oneof(fc.integer({ min: -5, max: 70000 }), port, fc.tuple(fc.integer({ min: 0, max: 70000 }), fc.integer({ min: 0, max: 70000 })).map(([a, b]) => `${a}-${b}`)), { maxLength: 4 }), proto: fc.oneof(fc.constantFrom("tcp", "udp", "any"), fc.string()) },
  { requiredKeys: [] },
);
const policy = fc.oneof(
  fc.anything({ maxDepth: 3 }),
  fc.constantFrom("none", "all", "", null),
  fc.record(
    { mode: fc.oneof(fc.constantFrom("enforce", "test", "disabled"), fc.string()), allow: fc.array(allowRule, { maxLength: 4 }), domains: fc.array(domainEntry, { maxLength: 5 }), dns: fc.record({ servers: fc.array(fc.oneof(fc.ipV4(), junk), { maxLength: 3 }) }) },
    { requiredKeys: [] },
  ),
);

describe("network policy parser under bad input", () => {
  it("gives a policy or E_FIREWALL_INVALID_RULE naming the problem, nothing else", () => {
    fc.assert(
      fc.property(policy, (raw) => {
        try {
          const p = parseNetworkPolicy(raw);
          if (p === "none") return;
          // Whatever it accepted is normalized: canonical names, ordered port ranges.
          for (const d of p.domains) expect(d).toMatch(/^(\*\.)?[\x21-\x7e]+$/);
          for (const r of p.allow) {
            expect((r.cidr === undefined) !== (r.host === undefined)).toBe(true);
            for (const pr of r.ports) expect(1 <= pr.from && pr.from <= pr.to && pr.to <= 65535, JSON.stringify(pr)).toBe(true);
          }
        } catch (err) {
          expect(err).toBeInstanceOf(FirewallError);
          expect((err as FirewallError).code).toBe("E_FIREWALL_INVALID_RULE");
          expect((err as FirewallError).message).toMatch(/^Invalid network policy: ./);
        }
      }),
      { numRuns: 500 },
    );
  });
});

/** The canonical host and ports an allow-list entry stands for, worked out without the matcher's compiler. */
function meaning(text: string): { wildcard: boolean; host: string; ports: readonly number[] } | undefined {
  let s = text.trim();
  let ports: readonly number[] = DEFAULT_PORTS;
  const m = /^(.*):(\d{1,5})$/.exec(s);
  if (m && !(m[1]!.includes(":") && !m[1]!.startsWith("["))) {
    const n = Number(m[2]);
    if (n < 1 || n > 65535) return undefined;
    ports = [n];
    s = m[1]!;
  }
  const wildcard = s.startsWith("*.");
  const c = canonicalHost(wildcard ? s.slice(2) : s);
  if (!c || (wildcard && c.kind !== "name")) return undefined;
  return { wildcard, host: c.host, ports };
}

describe("allow-list matcher", () => {
  const tcpPort = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(80, 443, 8443) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 65535 }) });
  // Mostly well-formed entries, so that many targets are allowed and the property has something to judge.
  const validEntry = fc.oneof(name, name.map((n) => `*.${n}`), fc.tuple(name, fc.constantFrom(80, 443, 8443)).map(([n, p]) => `${n}:${p}`), fc.ipV4());
  const entryList = fc.array(fc.oneof({ weight: 3, arbitrary: validEntry }, { weight: 1, arbitrary: domainEntry }), { maxLength: 6 });

  it("never allows a host that is not an entry or a subdomain of a wildcard entry", () => {
    let allowed = 0;
    // Targets: random hosts, and near misses built from the entries themselves.
    const targetFrom = (entries: string[]): fc.Arbitrary<string> =>
      entries.length === 0
        ? host
        : fc.oneof(
            host,
            fc.constantFrom(...entries).map((e) => e.replace(/^\*\./, "www.").replace(/:\d+$/, "")),
            fc.tuple(fc.constantFrom(...entries), label, fc.constantFrom("", ".", "-", "x")).map(([e, l, sep]) => {
              const h = e.replace(/^\*\./, "").replace(/:\d+$/, "");
              return sep === "" ? `${l}.${h}` : sep === "." ? `${h}.` : `${l}${sep}${h}`;
            }),
          );
    fc.assert(
      fc.property(
        entryList.chain((entries) => fc.tuple(fc.constant(entries), targetFrom(entries), tcpPort)),
        ([entries, target, port]) => {
          const list = compileAllowList(entries);
          const t = canonicalHost(target);
          if (!t) return;
          const verdict = matchTarget(list, t, port);
          if (!verdict.allowed) return;
          allowed++;
          const justified = entries.some((e) => {
            const m = meaning(e);
            if (!m || !m.ports.includes(port)) return false;
            return m.wildcard ? t.kind === "name" && t.host.endsWith(`.${m.host}`) && t.host !== m.host : t.host === m.host;
          });
          expect(justified, `${target} (${t.host}):${port} allowed by ${verdict.entry.text} of ${JSON.stringify(entries)}`).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
    // The property must have seen allowed targets, or it proved nothing.
    expect(allowed).toBeGreaterThan(20);
  });

  it("decides every spelling of a host alike: case and a trailing dot change nothing", () => {
    fc.assert(
      fc.property(fc.array(domainEntry, { maxLength: 5 }), name, tcpPort, (entries, n, port) => {
        const list = compileAllowList(entries);
        const spellings = [n, n.toUpperCase(), `${n}.`].map(canonicalHost);
        if (spellings.some((s) => !s)) return;
        const verdicts = spellings.map((s) => matchTarget(list, s!, port).allowed);
        expect(new Set(verdicts).size).toBe(1);
      }),
    );
  });

  it("canonical hosts are fixed points and never contain URL delimiters or controls", () => {
    fc.assert(
      fc.property(host, (h) => {
        const c = canonicalHost(h);
        if (!c) return;
        expect(c.host).toMatch(/^[\x21-\x7e]+$/);
        expect(c.host).not.toMatch(/[/\\?#@%[\]<>^|"'`{}]/);
        expect(canonicalHost(c.kind === "ipv6" ? `[${c.host}]` : c.host)).toEqual(c);
      }),
      { numRuns: 500 },
    );
  });
});
