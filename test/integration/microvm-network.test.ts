/**
 * The egress firewall seen from inside a real micro-VM: the guest's eth0 is
 * bridged into the firewall's namespace with the sandbox's own address, so the
 * same host-side rules, proxy and counters apply as to a namespace sandbox.
 * Traffic goes only to test hosts in namespaces this file creates (10.209.x),
 * sandboxes take their /30s from 10.208.0.0/16 (no other test uses either).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readdirSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { MicrovmBackend } from "../../src/sandbox/microvm/backend.js";
import { sweepStaleScratchTaps } from "../../src/sandbox/microvm/network.js";
import { SandboxNetworking, type SandboxNetwork } from "../../src/sandbox/network.js";
import { Firewall } from "../../src/policy/firewall/index.js";
import { EgressProxy } from "../../src/policy/firewall/proxy.js";
import { ownOwnerName } from "../../src/policy/limits/index.js";
import { collect } from "../../src/sandbox/collect.js";
import { parseConfig } from "../../src/config/load.js";
import { toSandboxSpec } from "../../src/config/schema.js";
import type { Sandbox } from "../../src/sandbox/types.js";
import { TestInternet } from "./firewall-harness.js";
import { announceSkip, microvmSkipReason } from "../helpers/capabilities.js";
import { microvmLeftovers } from "../helpers/leftovers.js";

const skip = microvmSkipReason() ?? (existsSync("/usr/sbin/nft") ? undefined : "nftables is not installed");
announceSkip("micro-VM network", skip);

const POOL = "10.208.0.0/16";
const INTERNET_OCTET = 209;

/**
 * A node one-liner run inside the VM: connect (optionally through an HTTP
 * CONNECT to the proxy), print what came back and how long it took ("a:ping 12").
 * Under TCG a blocked connection needs a generous wait to count as a timeout.
 */
const CLIENT = `
const net = require("node:net");
const [host, port, how] = process.argv.slice(1);
const target = how === "proxy" ? new URL(process.env.HTTPS_PROXY) : null;
const t0 = Date.now();
const s = net.connect({ host: target ? target.hostname : host, port: target ? Number(target.port) : Number(port) });
const t = setTimeout(() => { console.log("timeout"); process.exit(0); }, 3000);
let buf = "";
const done = (text) => { clearTimeout(t); console.log(text + " " + (Date.now() - t0)); s.destroy(); process.exit(0); };
s.on("connect", () => s.write(target ? "CONNECT " + host + ":" + port + " HTTP/1.1\\r\\nHost: " + host + ":" + port + "\\r\\n\\r\\n" : "ping\\n"));
s.on("data", (d) => {
  buf += d.toString();
  if (target && buf.startsWith("HTTP/1.1 200") && buf.includes("\\r\\n\\r\\n") && !buf.includes("|sent")) { buf += "|sent"; s.write("ping\\n"); return; }
  if (!target || !buf.startsWith("HTTP/1.1 200") || /:ping/.test(buf)) done(buf.replace("|sent", "").split("\\r\\n\\r\\n").pop().trim() || buf.split("\\r\\n")[0]);
});
s.on("error", (e) => { clearTimeout(t); console.log("error:" + e.code); process.exit(0); });
`;

/** Network namespaces, links and nft objects a sandbox's network consists of, as far as they still exist. */
function networkLeftovers(net: SandboxNetwork): string[] {
  const a = net.attachment;
  const short = a.hostInterface.slice(3);
  const out: string[] = [];
  if (existsSync(a.netnsPath)) out.push(`netns ${a.netnsPath}`);
  if (existsSync(`/sys/class/net/${a.hostInterface}`)) out.push(`veth ${a.hostInterface}`);
  const nft = spawnSync("nft", ["list", "table", "inet", "luminaguard"], { encoding: "utf8" });
  if (nft.status === 0 && nft.stdout.includes(short)) out.push(`nft objects of ${short}`);
  return out;
}

/** Template namespaces (lgvm-<owner>-…) of this process still there. */
async function scratchNamespaces(): Promise<string[]> {
  const own = await ownOwnerName();
  return (existsSync("/run/netns") ? readdirSync("/run/netns") : []).filter((n) => n.startsWith(`lgvm-${own}-`));
}

describe.skipIf(skip !== undefined)("micro-VM sandboxes behind the egress firewall", () => {
  let internet: TestInternet;
  let networking: SandboxNetworking;
  let backend: MicrovmBackend;
  const made: Sandbox[] = [];
  const names: Record<string, string> = {};
  const spec = (network: unknown) => toSandboxSpec(parseConfig({ sandbox: { backend: "microvm", network, limits: { memory: "160M", pids: 64 } } }).sandbox);

  beforeAll(async () => {
    internet = await TestInternet.create(`v${process.pid % 1000}`, [
      { name: "a", tcpPorts: [80, 8080], udpPorts: [] },
      { name: "b", tcpPorts: [80], udpPorts: [] },
    ], { octet: INTERNET_OCTET });
    names["web.test"] = internet.host("a").address;
    names["other.test"] = internet.host("b").address;
    // Test names resolve to the test hosts; nothing reaches a real resolver.
    const proxy = new EgressProxy({ listen: [], resolve: async (n) => (names[n] ? [names[n]] : []) });
    networking = new SandboxNetworking({ firewall: new Firewall({ poolCidr: POOL }), proxy });
    backend = new MicrovmBackend({ networking });
    // Boot the networked template before the timed tests: under TCG on a loaded 2-core host it takes 10-60 s.
    const t0 = performance.now();
    await (await backend.create(spec({ allow: [] }))).destroy();
    console.log(`[microvm-network] networked template + first sandbox: ${Math.round(performance.now() - t0)} ms`);
  }, 300_000);

  afterAll(async () => {
    await Promise.allSettled(made.map((s) => s.destroy()));
    await backend?.close();
    await networking?.close();
    internet?.close();
    // The template's namespace went after its save, the waiting clones' with close().
    expect(await scratchNamespaces()).toEqual([]);
  });

  async function sandbox(network: unknown): Promise<Sandbox> {
    const sb = await backend.create(spec(network));
    made.push(sb);
    return sb;
  }

  /** What the VM's client printed, without its timing. */
  async function connect(sb: Sandbox, host: string, port: number, viaProxy = false): Promise<string> {
    return (await connectTimed(sb, host, port, viaProxy)).text;
  }

  async function connectTimed(sb: Sandbox, host: string, port: number, viaProxy = false): Promise<{ text: string; connectMs: number | undefined; execMs: number }> {
    const t0 = performance.now();
    const r = await collect(sb.exec(["node", "-e", CLIENT, host, String(port), viaProxy ? "proxy" : "direct"], { timeoutMs: 30_000 }));
    const execMs = performance.now() - t0;
    const out = r.stdout.toString().trim() || r.stderr.toString().trim();
    const m = /^(.*) (\d+)$/.exec(out);
    return m ? { text: m[1]!, connectMs: Number(m[2]), execMs } : { text: out, connectMs: undefined, execMs };
  }

  it("serves networked sandboxes as clones of a template with a NIC, one clone waiting with its tap parked", async () => {
    expect(backend.stats().templates.some((t) => t.key.endsWith("-net"))).toBe(true);
    expect(backend.stats().fallbacks).toBe(0);
    // Only the waiting clone's namespace (prestarted: 1): the template's own went after its save.
    expect((await scratchNamespaces()).length).toBeLessThanOrEqual(1);
  });

  it("gives the guest's eth0 the sandbox address, and reaches exactly the allowed host and port", async () => {
    const a = internet.host("a");
    const b = internet.host("b");
    const t0 = performance.now();
    const sb = await sandbox({ allow: [{ cidr: a.address, ports: [80] }], dns: { servers: ["10.209.255.253"] } });
    const createMs = performance.now() - t0;
    const att = (sb.network as SandboxNetwork).attachment;
    const first = await connectTimed(sb, a.address, 80);
    const second = await connectTimed(sb, a.address, 80);
    console.log(`[microvm-network] networked clone create ${Math.round(createMs)} ms; first connection: exec ${Math.round(first.execMs)} ms (connect+echo ${first.connectMs} ms); second: exec ${Math.round(second.execMs)} ms (connect+echo ${second.connectMs} ms)`);
    expect(first.text).toBe("a:ping");
    expect(second.text).toBe("a:ping");
    // What the guest sees: its own address on eth0, the gateway, the policy's resolver.
    const view = await collect(sb.exec(["sh", "-c", "ip -4 addr show dev eth0; ip route; cat /etc/resolv.conf"]));
    const text = view.stdout.toString();
    expect(text).toContain(`inet ${att.sandboxAddress}/30`);
    expect(text).toMatch(new RegExp(`default via ${att.hostAddress.replaceAll(".", "\\.")} dev eth0`));
    expect(text).toContain("nameserver 10.209.255.253");
    expect(await connect(sb, a.address, 8080)).toBe("timeout");
    expect(await connect(sb, b.address, 80)).toBe("timeout");
    // The host's counters see the VM under the sandbox address, exactly as a namespace sandbox.
    const stats = await sb.network!.stats();
    expect(stats.firewall.allowed.some((d) => d.dest === a.address && d.port === 80)).toBe(true);
    expect(stats.firewall.denied.some((d) => d.dest === b.address)).toBe(true);
    expect(stats.firewall.allowedTotal).toBeGreaterThanOrEqual(2);
    expect(backend.stats()).toMatchObject({ fallbacks: 0, coldBoots: 0 });
  }, 120_000);

  it("reaches allowed domains only through the proxy, and never directly", async () => {
    const sb = await sandbox({ domains: ["web.test"] });
    expect(await connect(sb, "web.test", 80, true)).toBe("a:ping");
    expect(await connect(sb, "other.test", 80, true)).toMatch(/^LuminaGuard egress proxy: "other\.test"/);
    expect(await connect(sb, internet.host("a").address, 80)).toBe("timeout");
    const stats = await sb.network!.stats();
    expect(Object.keys(stats.proxy.allowed).some((k) => k.includes("web.test"))).toBe(true);
    expect(Object.keys(stats.proxy.denied).some((k) => k.includes("other.test"))).toBe(true);
  }, 120_000);

  it("applies a policy change to the live VM", async () => {
    const b = internet.host("b");
    const sb = await sandbox({ allow: [] });
    expect(await connect(sb, b.address, 80)).toBe("timeout");
    await sb.network!.update({ mode: "enforce", allow: [{ cidr: `${b.address}/32`, ports: [{ from: 80, to: 80 }], proto: "tcp" }], domains: [] });
    expect(await connect(sb, b.address, 80)).toBe("b:ping");
    expect(await sb.network!.rules()).toContain(`${b.address} . tcp . 80`);
  }, 120_000);

  it("bridges a cold-booted VM the same way (the CLI's one-shot exec: tap made in the sandbox's namespace)", async () => {
    const cold = new MicrovmBackend({ networking, snapshots: false });
    const a = internet.host("a");
    try {
      const sb = await cold.create(spec({ allow: [{ cidr: a.address, ports: [80] }] }));
      try {
        expect(cold.stats()).toMatchObject({ coldBoots: 1, clonesServed: 0 });
        expect(await connect(sb, a.address, 80)).toBe("a:ping");
        expect(await connect(sb, internet.host("b").address, 80)).toBe("timeout");
      } finally {
        const net = sb.network as SandboxNetwork;
        await sb.destroy();
        expect(networkLeftovers(net)).toEqual([]);
        expect(await microvmLeftovers([sb.id])).toEqual([]);
      }
    } finally {
      await cold.close(); // leaves the networking it was given alone
    }
  }, 180_000);

  it("sweeps the parking namespaces of dead owners, and only theirs", async () => {
    const own = await ownOwnerName();
    const [, pid, start] = own.split("-");
    // Our pid with another start time: a process that ran before with the same pid.
    const dead = `lgvm-pid-${pid}-${Number(start) + 1}-0badc0de`;
    const live = `lgvm-${own}-0badc0de`;
    spawnSync("ip", ["netns", "add", dead]);
    spawnSync("ip", ["netns", "add", live]);
    try {
      const removed = await sweepStaleScratchTaps();
      expect(removed).toContain(dead);
      expect(removed).not.toContain(live);
      expect(existsSync(`/run/netns/${dead}`)).toBe(false);
      expect(existsSync(`/run/netns/${live}`)).toBe(true);
    } finally {
      for (const n of [dead, live]) if (existsSync(`/run/netns/${n}`)) spawnSync("ip", ["netns", "delete", n]);
    }
  });

  it("destroy leaves nothing: QEMU, VM folder, namespace, veth, tap, bridge, rules", async () => {
    const sb = await sandbox({ allow: [{ cidr: internet.host("a").address, ports: [80] }] });
    const net = sb.network as SandboxNetwork;
    const netns = net.attachment.netnsPath.split("/").pop()!;
    const links = spawnSync("ip", ["-n", netns, "-o", "link", "show"], { encoding: "utf8" }).stdout;
    expect(links).toContain("lgtap0");
    expect(links).toContain("lgbr0");
    expect(links).toContain(`${net.attachment.sandboxInterface}@`);
    expect(networkLeftovers(net).length).toBeGreaterThan(0);
    await sb.destroy();
    expect(networkLeftovers(net)).toEqual([]);
    expect(await microvmLeftovers([sb.id])).toEqual([]);
    await expect(net.rules()).rejects.toMatchObject({ code: "E_FIREWALL_RULES" });
  }, 60_000);
});
