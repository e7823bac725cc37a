import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { allocateSubnet, parsePool, parseProcNetRoute, subnetAt } from "../../src/policy/firewall/addressing.js";
import { bigintToIpv6, ipv6ToBigint, parseCidr } from "../../src/policy/firewall/cidr.js";
import { emptyState, ownOwner, ownerAlive, parseState, StateStore, type FirewallState } from "../../src/policy/firewall/state.js";

describe("CIDR parsing", () => {
  it("canonicalizes IPv4 and IPv6 blocks", () => {
    expect(parseCidr("10.1.2.3")).toMatchObject({ family: 4, text: "10.1.2.3/32", prefix: 32 });
    expect(parseCidr("0.0.0.0/0")).toMatchObject({ family: 4, text: "0.0.0.0/0", first: 0n, last: 0xffffffffn });
    expect(parseCidr("2001:DB8:0:0::/64")).toMatchObject({ family: 6, text: "2001:db8::/64" });
    expect(parseCidr("::ffff:10.0.0.1")).toMatchObject({ family: 6, text: "::ffff:a00:1/128" });
  });

  it("round-trips IPv6 text", () => {
    for (const s of ["::", "::1", "2001:db8::", "fe80::1:2", "1:2:3:4:5:6:7:8", "1:0:0:2::3"]) expect(bigintToIpv6(ipv6ToBigint(s)!)).toBe(s);
    expect(ipv6ToBigint("fe80::1%eth0")).toBeUndefined();
  });
});

describe("sandbox subnets", () => {
  const pool = parsePool("10.203.0.0/16");

  it("gives each sandbox a /30 with the host on .1 and the sandbox on .2", () => {
    expect(pool).toEqual({ cidr: "10.203.0.0/16", first: 0x0acb0000, count: 16384 });
    expect(subnetAt(pool, 0)).toEqual({ index: 0, cidr: "10.203.0.0/30", hostAddress: "10.203.0.1", sandboxAddress: "10.203.0.2" });
    expect(subnetAt(pool, 16383)).toEqual({ index: 16383, cidr: "10.203.255.252/30", hostAddress: "10.203.255.253", sandboxAddress: "10.203.255.254" });
  });

  it("rejects pools that are not IPv4 blocks of /30 or larger", () => {
    expect(() => parsePool("10.203.0.0/31")).toThrow(/use a private IPv4 block of \/30 or larger/);
    expect(() => parsePool("fd00::/64")).toThrow(/use a private IPv4 block/);
    expect(() => parsePool("10.203.0.1/16")).toThrow('Invalid sandbox address pool: "10.203.0.1/16" has host bits set: write "10.203.0.0/16".');
  });

  it("starts after the last lease, skips live leases and routed subnets, and wraps around", () => {
    const small = parsePool("10.203.0.0/28"); // four /30s
    expect(allocateSubnet(small, new Set(), 0, [])?.cidr).toBe("10.203.0.0/30");
    expect(allocateSubnet(small, new Set([1]), 1, [])?.cidr).toBe("10.203.0.8/30");
    expect(allocateSubnet(small, new Set([3]), 3, [])?.cidr).toBe("10.203.0.0/30");
    // A host route covering 10.203.0.4-7 (another LuminaGuard, or a real network) is avoided.
    const routes = parseProcNetRoute(readRouteTable([["0400CB0A", "FCFFFFFF"]]));
    expect(allocateSubnet(small, new Set([0]), 0, routes)?.cidr).toBe("10.203.0.8/30");
    expect(allocateSubnet(small, new Set([0, 1, 2, 3]), 0, [])).toBeUndefined();
  });

  it("reads /proc/net/route (little-endian hex) and ignores default routes", () => {
    const text = readRouteTable([
      ["00000000", "00000000"],
      ["0000CB0A", "0000FFFF"],
      ["0002000A", "00FFFFFF"],
    ]);
    expect(parseProcNetRoute(text)).toEqual([
      { first: 0x0acb0000, last: 0x0acbffff },
      { first: 0x0a000200, last: 0x0a0002ff },
    ]);
  });
});

function readRouteTable(rows: [string, string][]): string {
  const head = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT";
  return [head, ...rows.map(([dest, mask]) => `eth0\t${dest}\t00000000\t0001\t0\t0\t0\t${mask}\t0\t0\t0`)].join("\n") + "\n";
}

describe("state file", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "lg-fw-state-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const sample: FirewallState = {
    version: 1,
    nextSubnet: 7,
    forwarding: { ipForward: "0", acceptRedirects: "1" },
    leases: { "1a2b3c4d": { sandboxId: "sb-1", subnet: "10.203.0.24/30", owner: { pid: 42, startTime: 99 }, createdAt: "2026-01-01T00:00:00.000Z" } },
  };

  it("round-trips through the file, written atomically and privately", async () => {
    const store = new StateStore(dir);
    expect(store.read()).toEqual(emptyState());
    await store.update((s) => Object.assign(s, structuredClone(sample)));
    expect(store.read()).toEqual(sample);
    expect(JSON.parse(readFileSync(join(dir, "state.json"), "utf8"))).toEqual(sample);
    expect(existsSync(join(dir, "state.lock"))).toBe(false);
  });

  it("treats a damaged or foreign file as empty and drops malformed leases", () => {
    expect(parseState("{not json")).toEqual(emptyState());
    expect(parseState(JSON.stringify({ version: 2, leases: {} }))).toEqual(emptyState());
    const odd = { ...sample, leases: { ...sample.leases, "not-a-short": sample.leases["1a2b3c4d"], abcdef01: { subnet: 5 } } };
    expect(parseState(JSON.stringify(odd)).leases).toEqual(sample.leases);
  });

  it("serializes updates, also across an async holder", async () => {
    const store = new StateStore(dir);
    const order: string[] = [];
    await Promise.all([
      store.update(async (s) => {
        order.push("a-start");
        await new Promise((r) => setTimeout(r, 30));
        s.nextSubnet = 1;
        order.push("a-end");
      }),
      new StateStore(dir).update((s) => {
        order.push(`b sees ${s.nextSubnet}`);
        s.nextSubnet = 2;
      }),
    ]);
    expect(order).toEqual(["a-start", "a-end", "b sees 1"]);
    expect(store.read().nextSubnet).toBe(2);
  });

  it("breaks the lock of a process that is gone", async () => {
    writeFileSync(join(dir, "state.lock"), "999999999 12345\n");
    const started = Date.now();
    await new StateStore(dir).update((s) => void (s.nextSubnet = 3));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(new StateStore(dir).read().nextSubnet).toBe(3);
  });

  it("tells live owners from dead ones by pid and start time", () => {
    expect(ownerAlive(ownOwner())).toBe(true);
    expect(ownerAlive({ ...ownOwner(), startTime: ownOwner().startTime + 1 })).toBe(false);
    expect(ownerAlive({ pid: 999999999, startTime: 1 })).toBe(false);
  });
});
