/**
 * The egress firewall seen from inside a real namespace sandbox (bwrap in the
 * firewall's network namespace): exactly what the policy allows is reachable.
 * Traffic goes only to test hosts in namespaces this file creates.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NamespaceBackend } from "../../src/sandbox/namespace/backend.js";
import { SandboxNetworking } from "../../src/sandbox/network.js";
import { EgressProxy } from "../../src/policy/firewall/proxy.js";
import { collect } from "../../src/sandbox/collect.js";
import { parseConfig } from "../../src/config/load.js";
import { toSandboxSpec } from "../../src/config/schema.js";
import type { Sandbox } from "../../src/sandbox/types.js";
import { TestInternet } from "./firewall-harness.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import type { SandboxNetwork } from "../../src/sandbox/network.js";

const skip = namespaceSkipReason() ?? (existsSync("/usr/sbin/nft") ? undefined : "nftables is not installed");
announceSkip("namespace network", skip);

/** A node one-liner run inside the sandbox: connect, optionally through an HTTP CONNECT, print what came back. */
const CLIENT = `
const net = require("node:net");
const [host, port, how] = process.argv.slice(1);
const target = how === "proxy" ? new URL(process.env.HTTPS_PROXY) : null;
const s = net.connect({ host: target ? target.hostname : host, port: target ? Number(target.port) : Number(port) });
const t = setTimeout(() => { console.log("timeout"); process.exit(0); }, 1500);
let buf = "";
s.on("connect", () => s.write(target ? "CONNECT " + host + ":" + port + " HTTP/1.1\\r\\nHost: " + host + ":" + port + "\\r\\n\\r\\n" : "ping\\n"));
s.on("data", (d) => {
  buf += d.toString();
  if (target && buf.startsWith("HTTP/1.1 200") && buf.includes("\\r\\n\\r\\n") && !buf.includes("|sent")) { buf += "|sent"; s.write("ping\\n"); return; }
  if (!target || !buf.startsWith("HTTP/1.1 200") || /:ping/.test(buf)) { clearTimeout(t); console.log(buf.replace("|sent", "").split("\\r\\n\\r\\n").pop().trim() || buf.split("\\r\\n")[0]); s.destroy(); process.exit(0); }
});
s.on("error", (e) => { clearTimeout(t); console.log("error:" + e.code); process.exit(0); });
`;

describe.skipIf(skip !== undefined)("namespace sandboxes behind the egress firewall", () => {
  let internet: TestInternet;
  let networking: SandboxNetworking;
  let backend: NamespaceBackend;
  const made: Sandbox[] = [];
  const names: Record<string, string> = {};

  beforeAll(async () => {
    internet = await TestInternet.create(`n${process.pid % 1000}`, [
      { name: "a", tcpPorts: [80, 8080], udpPorts: [5353] },
      { name: "b", tcpPorts: [80], udpPorts: [] },
    ]);
    names["web.test"] = internet.host("a").address;
    names["other.test"] = internet.host("b").address;
    // Test names resolve to the test hosts; nothing reaches a real resolver.
    const proxy = new EgressProxy({ listen: [], resolve: async (n) => (names[n] ? [names[n]] : []) });
    networking = new SandboxNetworking({ proxy });
    backend = new NamespaceBackend({ networking });
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(made.map((s) => s.destroy()));
    await networking?.close();
    internet?.close();
  });

  async function sandbox(network: unknown): Promise<Sandbox> {
    const sb = await backend.create(toSandboxSpec(parseConfig({ sandbox: { network } }).sandbox));
    made.push(sb);
    return sb;
  }

  async function connect(sb: Sandbox, host: string, port: number, viaProxy = false): Promise<string> {
    const r = await collect(sb.exec(["node", "-e", CLIENT, host, String(port), viaProxy ? "proxy" : "direct"], { timeoutMs: 10_000 }));
    return r.stdout.toString().trim() || r.stderr.toString().trim();
  }

  it("reaches exactly the allowed host and port", async () => {
    const a = internet.host("a");
    const b = internet.host("b");
    const sb = await sandbox({ allow: [{ cidr: a.address, ports: [80] }] });
    expect(await connect(sb, a.address, 80)).toBe("a:ping");
    expect(await connect(sb, a.address, 8080)).toBe("timeout");
    expect(await connect(sb, b.address, 80)).toBe("timeout");
    const stats = await sb.network!.stats();
    expect(stats.firewall.allowed.some((d) => d.dest === a.address && d.port === 80)).toBe(true);
    expect(stats.firewall.denied.some((d) => d.dest === b.address)).toBe(true);
  });

  it("reaches allowed domains only through the proxy, and never directly", async () => {
    const sb = await sandbox({ domains: ["web.test"] });
    expect(await connect(sb, "web.test", 80, true)).toBe("a:ping");
    // The agent reads why: the proxy's refusal names the domain.
    expect(await connect(sb, "other.test", 80, true)).toMatch(/^LuminaGuard egress proxy: "other\.test"/);
    // The same host without the proxy: dropped.
    expect(await connect(sb, internet.host("a").address, 80)).toBe("timeout");
  });

  it("applies a policy change to the live sandbox", async () => {
    const b = internet.host("b");
    const sb = await sandbox({ allow: [] });
    expect(await connect(sb, b.address, 80)).toBe("timeout");
    await sb.network!.update({ mode: "enforce", allow: [{ cidr: `${b.address}/32`, ports: [{ from: 80, to: 80 }], proto: "tcp" }], domains: [] });
    expect(await connect(sb, b.address, 80)).toBe("b:ping");
    expect(await sb.network!.rules()).toContain(b.address);
    // Another process (the CLI) sees the same live rules.
    const cli = spawnSync(resolve(import.meta.dirname, "../../bin/luminaguard"), ["firewall", "show", sb.id], { encoding: "utf8" });
    expect(cli.status).toBe(0);
    expect(cli.stdout).toContain(`# sandbox ${sb.id}`);
    expect(cli.stdout).toContain(`${b.address} . tcp . 80`);
    const unknown = spawnSync(resolve(import.meta.dirname, "../../bin/luminaguard"), ["firewall", "show", "sb-000000000000"], { encoding: "utf8" });
    expect(unknown.status).toBe(125);
    expect(unknown.stderr).toMatch(/No live sandbox sb-000000000000 has a network.*\[E_FIREWALL_UNKNOWN_SANDBOX\]/);
  });

  it("lets blocked traffic through in test mode, and counts it", async () => {
    const b = internet.host("b");
    const sb = await sandbox({ mode: "test", allow: [] });
    expect(await connect(sb, b.address, 80)).toBe("b:ping");
    expect((await sb.network!.stats()).firewall.deniedTotal).toBeGreaterThan(0);
  });

  it("still blocks the host's own services, even with a wide allow-list", async () => {
    // A service on every host address; the sandbox's gateway is one of them.
    const server = createServer((c) => c.end("host-service\n"));
    await new Promise<void>((r) => server.listen(0, "0.0.0.0", r));
    const port = (server.address() as { port: number }).port;
    try {
      const sb = await sandbox({ allow: [{ cidr: "0.0.0.0/0", ports: [port] }] });
      const gateway = (sb.network as SandboxNetwork).attachment.hostAddress;
      expect(await connect(sb, gateway, port)).toBe("timeout");
    } finally {
      server.close();
    }
  });
});
