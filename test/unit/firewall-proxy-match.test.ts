import { describe, expect, it } from "vitest";
import { hasCode } from "../../src/errors.js";
import { compilePolicy, decide, rawRefusal } from "../../src/policy/firewall/proxy-decide.js";
import { canonicalHost, compileAllowList, matchTarget, splitHostPort, type CanonicalHost } from "../../src/policy/firewall/proxy-match.js";
import { clientKey, EgressProxy } from "../../src/policy/firewall/proxy.js";

function host(s: string): CanonicalHost {
  const c = canonicalHost(s);
  if (!c) throw new Error(`test setup: ${s} is not a host`);
  return c;
}

function allows(domains: string[], target: string, port = 443): boolean {
  return matchTarget(compileAllowList(domains), host(target), port).allowed;
}

describe("canonicalHost", () => {
  it("lowercases, strips one trailing dot and keeps names as names", () => {
    expect(canonicalHost("API.Example.COM.")).toEqual({ kind: "name", host: "api.example.com" });
    expect(canonicalHost("_dmarc.example.com")).toEqual({ kind: "name", host: "_dmarc.example.com" });
  });

  it("turns IDN names into punycode (also full-width and soft-hyphen spellings)", () => {
    expect(canonicalHost("Bücher.Example")).toEqual({ kind: "name", host: "xn--bcher-kva.example" });
    expect(canonicalHost("ｅｘａｍｐｌｅ.com")?.host).toBe("example.com");
  });

  it("reads every IPv4 spelling the resolver would accept as an address, not a name", () => {
    expect(canonicalHost("127.0.0.1")).toEqual({ kind: "ipv4", host: "127.0.0.1" });
    expect(canonicalHost("2130706433")).toEqual({ kind: "ipv4", host: "127.0.0.1" });
    expect(canonicalHost("0x7f.1")).toEqual({ kind: "ipv4", host: "127.0.0.1" });
  });

  it("compresses IPv6, with or without brackets, and refuses zone ids", () => {
    expect(canonicalHost("[2001:DB8:0:0::1]")).toEqual({ kind: "ipv6", host: "2001:db8::1" });
    expect(canonicalHost("::1")).toEqual({ kind: "ipv6", host: "::1" });
    expect(canonicalHost("fe80::1%eth0")).toBeUndefined();
  });

  it("refuses what is not a host", () => {
    for (const bad of ["", " ", "a..b", "exa mple.com", "a/b", "a:b", "[nope]", "x".repeat(300), "ex\u0000ample.com", "a.b.c.1", ".", "a#b", "a%41.com", "u@a.test", "a\\b"]) {
      expect(canonicalHost(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });
});

describe("splitHostPort", () => {
  it("splits names, bracketed and bare IPv6, and refuses bad ports", () => {
    expect(splitHostPort("a.test:443")).toEqual({ host: "a.test", port: 443 });
    expect(splitHostPort("a.test")).toEqual({ host: "a.test", port: undefined });
    expect(splitHostPort("[::1]:8443")).toEqual({ host: "[::1]", port: 8443 });
    expect(splitHostPort("2001:db8::1")).toEqual({ host: "2001:db8::1", port: undefined });
    for (const bad of ["a.test:", "a.test:0", "a.test:65536", "a.test:http", "a.test:-1", "[::1]:x"]) expect(splitHostPort(bad), bad).toBeUndefined();
  });
});

describe("allow-list matching", () => {
  it("matches exact names only", () => {
    expect(allows(["api.example.com"], "api.example.com")).toBe(true);
    expect(allows(["api.example.com"], "x.api.example.com")).toBe(false);
    expect(allows(["api.example.com"], "example.com")).toBe(false);
    expect(allows(["api.example.com"], "api.example.com.evil.test")).toBe(false);
  });

  it("matches wildcards at any depth but not the bare domain", () => {
    expect(allows(["*.example.org"], "a.example.org")).toBe(true);
    expect(allows(["*.example.org"], "a.b.example.org")).toBe(true);
    expect(allows(["*.example.org"], "example.org")).toBe(false);
    expect(allows(["*.example.org"], "badexample.org")).toBe(false);
    expect(allows(["*.example.org", "example.org"], "example.org")).toBe(true);
  });

  it("ignores case and a trailing dot on both sides", () => {
    expect(allows(["API.Example.com."], "api.EXAMPLE.com.")).toBe(true);
    expect(allows(["*.Example.ORG"], "A.example.org.")).toBe(true);
  });

  it("compares IDN names in punycode whichever way each side is written", () => {
    expect(allows(["bücher.example"], "xn--bcher-kva.example")).toBe(true);
    expect(allows(["xn--bcher-kva.example"], "BÜCHER.example")).toBe(true);
    expect(allows(["*.bücher.example"], "shop.xn--bcher-kva.example")).toBe(true);
  });

  it("allows ports 80 and 443 by default, and exactly the listed port for name:port", () => {
    expect(allows(["a.test"], "a.test", 80)).toBe(true);
    expect(allows(["a.test"], "a.test", 443)).toBe(true);
    const r = matchTarget(compileAllowList(["a.test"]), host("a.test"), 8080);
    expect(r).toEqual({ allowed: false, reason: "port", portsForHost: [80, 443] });
    expect(allows(["a.test:8080"], "a.test", 8080)).toBe(true);
    expect(allows(["a.test:8080"], "a.test", 443)).toBe(false);
    expect(allows(["*.a.test:8443"], "x.a.test", 8443)).toBe(true);
  });

  it("refuses IP-literal targets unless the address itself is listed", () => {
    const list = compileAllowList(["*.example.org"]);
    expect(matchTarget(list, host("203.0.113.7"), 443)).toMatchObject({ allowed: false, reason: "ip-literal" });
    expect(matchTarget(list, host("[2001:db8::1]"), 443)).toMatchObject({ allowed: false, reason: "ip-literal" });
    expect(allows(["203.0.113.7"], "203.0.113.7")).toBe(true);
    expect(allows(["203.0.113.7"], "3405803783")).toBe(true); // the same address, written as one number
    expect(allows(["[2001:DB8::1]:8443"], "2001:db8:0::1", 8443)).toBe(true);
    // A listed address never lets a name through, and a name never matches an address.
    expect(allows(["203.0.113.7"], "a.test")).toBe(false);
  });

  it("collects entries it cannot use", () => {
    const list = compileAllowList(["ok.test", "*", "a.*.test", "http://x.test", "x.test:99999", "*.", ""]);
    expect(list.entries.map((e) => e.text)).toEqual(["ok.test"]);
    expect(list.invalid).toEqual(["*", "a.*.test", "http://x.test", "x.test:99999", "*.", ""]);
  });
});

describe("decide", () => {
  const policy = compilePolicy({ sandboxId: "sb1", domains: ["api.example.com", "*.example.org"], mode: "enforce" });

  it("says what was refused and what is allowed, in words an agent can act on", () => {
    const v = decide(policy, "10.0.0.2", host("evil.test"), 443);
    expect(v).toMatchObject({ decision: "deny", reason: "domain" });
    expect(v.refusal?.message).toBe(`LuminaGuard egress proxy: "evil.test" is not in this sandbox's allowed domains (allowed: api.example.com, *.example.org)`);
    const raw = rawRefusal(v.refusal!);
    expect(raw).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(raw).toContain("X-LuminaGuard-Denied: domain\r\n");
    expect(raw).toContain(`Content-Length: ${Buffer.byteLength(v.refusal!.message + "\n")}\r\n`);
  });

  it("explains port and IP-literal refusals", () => {
    expect(decide(policy, "c", host("api.example.com"), 22).refusal?.message).toContain('"api.example.com" is allowed only on port 80, 443, not 22');
    expect(decide(policy, "c", host("1.2.3.4"), 443).refusal).toMatchObject({ status: 403, denied: "ip-literal" });
  });

  it("refuses clients without a policy", () => {
    expect(decide(undefined, "10.9.9.9", host("api.example.com"), 443)).toMatchObject({ decision: "deny", reason: "no-policy", refusal: { denied: "client" } });
  });

  it("lets everything through in test mode (as would-deny) and in disabled mode", () => {
    const test = compilePolicy({ sandboxId: "t", domains: ["a.test"], mode: "test" });
    expect(decide(test, "c", host("b.test"), 443)).toMatchObject({ decision: "would-deny", reason: "domain" });
    expect(decide(test, "c", host("b.test"), 443).refusal).toBeUndefined();
    const off = compilePolicy({ sandboxId: "d", domains: [], mode: "disabled" });
    expect(decide(off, "c", host("1.2.3.4"), 25)).toEqual({ decision: "allow", reason: "disabled" });
  });

  it("shortens a long allow-list in messages", () => {
    const many = compilePolicy({ sandboxId: "m", domains: Array.from({ length: 30 }, (_, i) => `h${i}.test`), mode: "enforce" });
    expect(decide(many, "c", host("x.test"), 443).refusal?.message).toMatch(/h19\.test and 10 more\)$/);
  });
});

describe("setPolicy and client keys", () => {
  it("keys IPv4-mapped client addresses as IPv4", () => {
    expect(clientKey("::ffff:10.1.2.3")).toBe("10.1.2.3");
    expect(clientKey("::FFFF:a01:203")).toBe("10.1.2.3");
    expect(clientKey("2001:DB8::0:1")).toBe("2001:db8::1");
  });

  it("refuses bad entries, modes and client addresses with E_FIREWALL_INVALID_RULE", () => {
    const proxy = new EgressProxy({ listen: [] });
    const code = (f: () => void) => {
      try {
        f();
      } catch (err) {
        return hasCode(err, "E_FIREWALL_INVALID_RULE") ? (err as Error).message : `wrong error: ${String(err)}`;
      }
      return "no error";
    };
    expect(code(() => proxy.setPolicy("10.0.0.2", { sandboxId: "s", domains: ["a.*.test"], mode: "enforce" }))).toContain('"a.*.test" is not a valid domain entry');
    expect(code(() => proxy.setPolicy("sandbox-1", { sandboxId: "s", domains: [], mode: "enforce" }))).toContain("not an IP address");
    expect(code(() => proxy.setPolicy("10.0.0.2", { sandboxId: "s", domains: [], mode: "off" as "enforce" }))).toContain("mode must be");
  });

  it("refuses bad options with E_FIREWALL_PROXY", () => {
    expect(() => new EgressProxy({ listen: [], blockedTargets: ["10.0.0.0/33"] })).toThrow(/not an address or CIDR/);
    expect(() => new EgressProxy({ listen: [], connectTimeoutMs: -1 })).toThrow(/connectTimeoutMs must be a positive/);
  });
});
