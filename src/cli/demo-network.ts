/**
 * The demo's network part: a pretend "internet" host in a network namespace the
 * demo creates (nothing outside this machine is contacted), and a sandbox whose
 * policy allows one port of it and one domain through the egress proxy.
 */
import { NamespaceBackend } from "../sandbox/namespace/backend.js";
import { SandboxNetworking } from "../sandbox/network.js";
import { EgressProxy } from "../policy/firewall/proxy.js";
import { collect } from "../sandbox/collect.js";
import { parseConfig } from "../config/load.js";
import { toSandboxSpec } from "../config/schema.js";
import type { Sandbox } from "../sandbox/types.js";
import { style } from "./style.js";
import { DemoHost } from "./demo-host.js";

const TAG = `lgdemo${process.pid % 100000}`;
const HOST = "10.207.9.2";
const GATEWAY = "10.207.9.1";
const SERVER = `for (const p of [80, 8080]) require("node:net").createServer((s) => { s.on("error", () => {}); s.on("data", () => s.end("hello from the test host, port " + p)); }).listen(p, "0.0.0.0"); setTimeout(() => console.log("ready"), 100);`;
const CLIENT = `const net = require("node:net"); const [host, port, how] = process.argv.slice(1);
const p = how === "proxy" ? new URL(process.env.HTTPS_PROXY) : null;
const s = net.connect(p ? { host: p.hostname, port: Number(p.port) } : { host, port: Number(port) });
const t = setTimeout(() => { console.log("blocked (no answer)"); process.exit(0); }, 1500); let buf = "";
s.on("connect", () => s.write(p ? "CONNECT " + host + ":" + port + " HTTP/1.1\\r\\n\\r\\n" : "hi\\n"));
s.on("data", (d) => { buf += d; if (p && buf.startsWith("HTTP/1.1 200") && !buf.includes("hello")) { if (buf.endsWith("\\r\\n\\r\\n")) s.write("hi\\n"); return; }
  clearTimeout(t); console.log(buf.includes("hello") ? "reached: " + buf.split("\\r\\n\\r\\n").pop() : "refused: " + buf.split("\\r\\n\\r\\n").pop()); process.exit(0); });
s.on("error", (e) => { clearTimeout(t); console.log("blocked (" + e.code + ")"); process.exit(0); });`;

const say = (line = ""): void => void process.stdout.write(`${line}\n`);

async function connect(sb: Sandbox, host: string, port: number, how: "direct" | "proxy"): Promise<string> {
  const r = await collect(sb.exec(["node", "-e", CLIENT, host, String(port), how], { timeoutMs: 10_000 }));
  return (r.stdout.toString() || r.stderr.toString()).trim();
}

/** Run the network part of the demo; returns false when a check went the wrong way. */
export async function networkDemo(): Promise<boolean> {
  say(style.bold("5. The egress firewall: default deny, an IP allow-list, domains through the proxy"));
  if (process.getuid?.() !== 0) {
    say(style.dim("  skipped: network namespaces and nftables need root (run `sudo make demo`)."));
    return true;
  }
  const names: Record<string, string> = { "docs.demo": HOST, "evil.demo": HOST };
  const networking = new SandboxNetworking({ proxy: new EgressProxy({ listen: [], resolve: async (n) => (names[n] ? [names[n]] : []) }) });
  const backend = new NamespaceBackend({ networking });
  let host: DemoHost | undefined;
  let sb: Sandbox | undefined;
  try {
    host = await DemoHost.start({ name: TAG, address: HOST, gateway: GATEWAY, server: SERVER });
    sb = await backend.create(toSandboxSpec(parseConfig({ sandbox: { network: { allow: [{ cidr: HOST, ports: [80] }], domains: ["docs.demo"] } } }).sandbox));
    say(`  policy: allow ${HOST}:80, domain docs.demo (a test host in a namespace made for this demo)`);
    const checks: [string, string, number, "direct" | "proxy", boolean][] = [
      [`${HOST}:80 (allowed)`, HOST, 80, "direct", true],
      [`${HOST}:8080 (not allowed)`, HOST, 8080, "direct", false],
      ["docs.demo via the proxy (allowed)", "docs.demo", 80, "proxy", true],
      ["evil.demo via the proxy (not allowed)", "evil.demo", 80, "proxy", false],
    ];
    let ok = true;
    for (const [label, target, port, how, allowed] of checks) {
      const out = await connect(sb, target, port, how);
      const reached = out.startsWith("reached");
      ok &&= reached === allowed;
      say(`  ${reached === allowed ? style.green("as expected") : style.red("WRONG")}  ${label.padEnd(38)} ${style.dim(out.slice(0, 80))}`);
    }
    const stats = await sb.network!.stats();
    say(`  counted: ${stats.firewall.allowedTotal} allowed, ${stats.firewall.deniedTotal} denied by the rules; proxy denied ${Object.keys(stats.proxy.denied).join(", ") || "nothing"}`);
    return ok;
  } finally {
    await sb?.destroy();
    await backend.close();
    await networking.close(); // given to the backend, so ours to close
    host?.stop();
  }
}
