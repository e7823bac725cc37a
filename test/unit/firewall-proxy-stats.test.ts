/** The egress proxy's counters: tunnel bytes per sandbox and destination, summed, capped like the connection counts. */
import { describe, expect, it } from "vitest";
import { MAX_DESTINATIONS, OTHER_DESTINATIONS, ProxyStats } from "../../src/policy/firewall/proxy-stats.js";

describe("ProxyStats tunnel bytes", () => {
  it("adds each ended tunnel's bytes by sandbox and destination, and sums over sandboxes", () => {
    const s = new ProxyStats();
    s.recordBytes("sb1", "a.test:443", 10, 1_000);
    s.recordBytes("sb1", "a.test:443", 5, 500);
    s.recordBytes("sb2", "a.test:443", 1, 2);
    s.recordBytes("sb2", "b.test:80", 3, 4);
    expect(s.bytes("sb1")).toEqual({ "a.test:443": { sent: 15, received: 1_500 } });
    expect(s.bytes()).toEqual({ "a.test:443": { sent: 16, received: 1_502 }, "b.test:80": { sent: 3, received: 4 } });
    expect(s.get("sb1")).toEqual({ allowed: {}, denied: {} });
    s.forget("sb1");
    expect(s.bytes("sb1")).toEqual({});
  });

  it("counts destinations past the cap under one key", () => {
    const s = new ProxyStats();
    for (let i = 0; i < MAX_DESTINATIONS + 3; i++) s.recordBytes("sb", `h${i}.test:443`, 1, 1);
    const b = s.bytes("sb");
    expect(Object.keys(b)).toHaveLength(MAX_DESTINATIONS + 1);
    expect(b[OTHER_DESTINATIONS]).toEqual({ sent: 3, received: 3 });
  });
});
