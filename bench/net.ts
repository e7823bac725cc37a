/**
 * bench/net: what the egress firewall costs.
 *  1. Extra spawn cost of a networked sandbox (own netns, veth, nftables rules)
 *     over network "none": create -> exec true -> destroy, p50/p95 of each.
 *  2. Throughput of a 100 MB download from a test host (in a network namespace
 *     made here) through the egress proxy versus a direct allowed connection,
 *     from inside a sandbox.
 * Traffic goes only to the test host's namespace. Run with `make bench`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NamespaceBackend } from "../src/sandbox/namespace/backend.js";
import { SandboxNetworking } from "../src/sandbox/network.js";
import { EgressProxy } from "../src/policy/firewall/proxy.js";
import { collect } from "../src/sandbox/collect.js";
import { parseConfig } from "../src/config/load.js";
import { toSandboxSpec } from "../src/config/schema.js";
import { repoRoot, summarize, table, type Summary } from "./stats.js";
import { DemoHost } from "../src/cli/demo-host.js";

const RUNS = Number(process.env.RUNS ?? 200);
/** NET_SPAWN=0 measures only the transfers (for iterating on the proxy); the spawn target then reads "skipped". */
const SPAWN = process.env.NET_SPAWN !== "0";
const MB = 100;
const NS = `lgb-${process.pid % 10000}`;
const HOST_IP = "10.205.7.2";
const GW_IP = "10.205.7.1";

// Serves MB megabytes once the client has said "ping", directly or through a CONNECT tunnel. The
// client speaks first, as an HTTP or TLS client does: until it has, the proxy's gate (proxy-tunnel.ts)
// has not checked the tunnel, so it is neither spliced both ways nor handed to the kernel relay.
const SERVER = `require("node:net").createServer((s) => { s.on("error", () => {}); const chunk = Buffer.alloc(1 << 20, 120); let n = 0;
  const go = () => { while (n < ${MB}) { n++; if (!s.write(chunk)) return s.once("drain", go); } s.end(); };
  s.once("data", () => { s.resume(); go(); }); }).listen(80, "0.0.0.0", () => console.log("ready"));`;

const CLIENT = `const net = require("node:net"); const how = process.argv[1];
const p = how === "proxy" ? new URL(process.env.HTTPS_PROXY) : null;
const s = net.connect(p ? { host: p.hostname, port: Number(p.port) } : { host: "${HOST_IP}", port: 80 });
let got = 0, t0 = 0, head = !p;
s.on("connect", () => { t0 = performance.now(); s.write(p ? "CONNECT data.bench:80 HTTP/1.1\\r\\nHost: data.bench:80\\r\\n\\r\\n" : "ping\\n"); });
s.on("data", (d) => { if (!head) { const i = d.indexOf("\\r\\n\\r\\n"); if (i < 0) return; head = true; d = d.subarray(i + 4); s.write("ping\\n"); } got += d.length; });
s.on("end", () => console.log(JSON.stringify({ bytes: got, ms: performance.now() - t0 })));`;

async function main(): Promise<void> {
  // NET_RELAY=0: tunnels stay on the Node relay (to compare with the kernel relay, dist/bin/lg-relay).
  const relayEvents: string[] = [];
  const proxy = new EgressProxy({
    listen: [],
    resolve: async (n) => (n === "data.bench" ? [HOST_IP] : []),
    ...(process.env.NET_RELAY === "0" ? { relay: { path: false as const } } : {}),
    log: (e) => (e.type === "relay" ? relayEvents.push(e.message) : undefined),
  });
  const networking = new SandboxNetworking({ proxy });
  const backend = new NamespaceBackend({ networking });
  const spec = (network: unknown) => toSandboxSpec(parseConfig({ sandbox: { network } }).sandbox);
  const rows: Summary[] = [];
  let server: DemoHost | undefined;
  try {
    // Spawn (what a task waits for: create + first exec) and teardown (done after the task, off its path) apart.
    const cycle = async (network: unknown, teardown: number[]): Promise<number> => {
      const t0 = performance.now();
      const sb = await backend.create(spec(network));
      try {
        await collect(sb.exec(["true"]));
        return performance.now() - t0;
      } finally {
        const t1 = performance.now();
        await sb.destroy();
        teardown.push(performance.now() - t1);
      }
    };
    process.stderr.write(SPAWN ? `bench/net: ${RUNS} runs per spawn case\n` : "bench/net: NET_SPAWN=0, transfers only\n");
    for (const [name, network] of [
      ["network none", "none"],
      ["firewalled network", { allow: [{ cidr: HOST_IP, ports: [80] }] }],
    ] as const) {
      if (!SPAWN) break;
      const spawnMs: number[] = [];
      const teardownMs: number[] = [];
      for (let i = 0; i < 3; i++) await cycle(network, []);
      for (let i = 0; i < RUNS; i++) spawnMs.push(await cycle(network, teardownMs));
      rows.push(summarize(`${name}: spawn (create + exec true)`, spawnMs));
      rows.push(summarize(`${name}: destroy`, teardownMs));
    }

    server = await DemoHost.start({ name: NS, address: HOST_IP, gateway: GW_IP, server: SERVER });
    const transfer = async (how: "direct" | "proxy"): Promise<number> => {
      const sb = await backend.create(spec(how === "direct" ? { allow: [{ cidr: HOST_IP, ports: [80] }] } : { domains: ["data.bench"] }));
      try {
        const r = await collect(sb.exec(["node", "-e", CLIENT, how], { timeoutMs: 120_000 }));
        const out = JSON.parse(r.stdout.toString()) as { bytes: number; ms: number };
        if (out.bytes !== MB * 2 ** 20) throw new Error(`${how}: got ${out.bytes} bytes, want ${MB * 2 ** 20}: ${r.stderr.toString()}`);
        return (out.bytes / 2 ** 20) / (out.ms / 1000);
      } finally {
        await sb.destroy();
      }
    };
    const direct: number[] = [];
    const proxied: number[] = [];
    for (let i = 0; i < 5; i++) {
      direct.push(await transfer("direct"));
      proxied.push(await transfer("proxy"));
    }
    const d = summarize("direct (allowed IP rule), MB/s", direct);
    const relay = process.env.NET_RELAY === "0" ? "Node relay: NET_RELAY=0" : relayEvents.length > 0 ? `Node relay: ${relayEvents.join("; ")}` : "kernel relay";
    const p = summarize(`through the egress proxy (allowed domain, ${relay}), MB/s`, proxied);
    const [none, , fw] = rows as [Summary | undefined, Summary | undefined, Summary | undefined];
    const added = none && fw ? fw.p50 - none.p50 : undefined;
    const ratio = p.p50 / d.p50;
    const targets = [
      { target: "networked sandbox adds < 15 ms p50 over network none", value: added === undefined ? "skipped (NET_SPAWN=0)" : `${added.toFixed(1)} ms`, ok: added !== undefined && added < 15 },
      { target: "proxy throughput >= 80% of direct (p50 of 5 x 100 MB)", value: `${(ratio * 100).toFixed(0)}%`, ok: ratio >= 0.8 },
    ];
    const tput = ["| transfer (100 MB) | runs | p50 MB/s | p95 MB/s | mean MB/s |", "|---|---:|---:|---:|---:|", ...[d, p].map((r) => `| ${r.name} | ${r.runs} | ${r.p50.toFixed(0)} | ${r.p95.toFixed(0)} | ${r.mean.toFixed(0)} |`)].join("\n");
    const out = ["## bench/net", "", ...(rows.length > 0 ? [table(rows), ""] : []), tput, "", "| target | measured | met |", "|---|---|---|", ...targets.map((t) => `| ${t.target} | ${t.value} | ${t.ok ? "yes" : "NO"} |`)].join("\n");
    process.stdout.write(`${out}\n`);
    const dir = join(repoRoot(), "bench", "results");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `net-${new Date().toISOString().replace(/[:.]/g, "-")}.json`), JSON.stringify({ rows, direct, proxied, targets }, null, 2));
    // A transfers-only run is not the whole picture: it does not replace the recorded one.
    if (SPAWN) writeFileSync(join(dir, "net-latest.md"), `${out}\n`);
  } finally {
    server?.stop();
    await backend.close();
    await networking.close(); // given to the backend, so ours to close
  }
}

await main();
