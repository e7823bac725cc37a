/** The `ip` batches that bridge a sandbox's firewall namespace to its VM (pure; pinned so a change is deliberate). */
import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { bridgeBatch, unbridgeBatch } from "../../src/sandbox/microvm/network.js";

const v6 = existsSync("/proc/sys/net/ipv6");

describe("micro-VM network batches", () => {
  it("moves the sandbox address off the veth and bridges it with the VM's tap", () => {
    const lines = bridgeBatch("lgs1a2b3c4d", { makeTap: true }).trimEnd().split("\n");
    expect(lines).toEqual([
      "route flush table main",
      "address flush dev lgs1a2b3c4d",
      "link add name lgbr0 type bridge",
      ...(v6 ? ["link set dev lgbr0 addrgenmode none"] : []),
      "tuntap add dev lgtap0 mode tap user 65534 group 65534",
      ...(v6 ? ["link set dev lgtap0 addrgenmode none"] : []),
      "link set dev lgs1a2b3c4d master lgbr0",
      "link set dev lgtap0 master lgbr0",
      "link set dev lgtap0 up",
      "link set dev lgbr0 up",
    ]);
  });

  it("takes a tap moved in from a clone's parking namespace as it is", () => {
    const batch = bridgeBatch("lgs1a2b3c4d", { makeTap: false });
    expect(batch).not.toContain("tuntap");
    expect(batch).toContain("link set dev lgtap0 master lgbr0\n");
  });

  it("removes tap and bridge, and nothing of the firewall's", () => {
    expect(unbridgeBatch()).toBe("link delete dev lgtap0\nlink delete dev lgbr0\n");
  });
});
