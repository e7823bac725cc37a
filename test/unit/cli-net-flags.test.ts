import { describe, expect, it } from "vitest";
import { networkFromFlags, parseAllowFlag } from "../../src/cli/net-flags.js";

describe("--allow values", () => {
  it.each([
    ["10.0.0.5", { cidr: "10.0.0.5" }],
    ["10.0.0.5:443", { cidr: "10.0.0.5", ports: [443] }],
    ["192.168.1.0/24:80-90/udp", { cidr: "192.168.1.0/24", ports: ["80-90"], proto: "udp" }],
    ["[fd00::1]:53,853/any", { cidr: "fd00::1", ports: [53, 853], proto: "any" }],
    ["fd00::/64", { cidr: "fd00::/64" }],
    ["db.internal:5432", { host: "db.internal", ports: [5432] }],
  ])("%s", (flag, rule) => expect(parseAllowFlag(flag)).toEqual(rule));

  it.each(["", "10.0.0.5:", "10.0.0.5:443/icmp", "a b"])("rejects %j", (flag) => {
    expect(() => parseAllowFlag(flag)).toThrow(expect.objectContaining({ code: "E_USAGE" }));
  });
});

describe("network flags", () => {
  const none = { allow: [], allowDomain: [], dns: [] };
  it("keeps the config's policy when no flag is given", () => {
    expect(networkFromFlags(none, { domains: ["a.example"] })).toEqual({ domains: ["a.example"] });
  });
  it("adds flags to the config's allow-list", () => {
    expect(networkFromFlags({ ...none, allow: ["10.1.2.3:80"], allowDomain: ["x.example"], dns: ["10.1.2.53"], netMode: "test" }, { allow: [{ cidr: "10.9.9.9" }] })).toEqual({
      allow: [{ cidr: "10.9.9.9" }, { cidr: "10.1.2.3", ports: [80] }],
      domains: ["x.example"],
      dns: { servers: ["10.1.2.53"] },
      mode: "test",
    });
  });
  it("--net none wins over the config", () => {
    expect(networkFromFlags({ ...none, net: "none" }, { allow: [] })).toBe("none");
  });
  it("explains a bad --net value", () => {
    expect(() => networkFromFlags({ ...none, net: "{oops" }, undefined)).toThrow(/--net takes "none", a JSON policy or @FILE/);
  });
});
