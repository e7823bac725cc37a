/**
 * bench/mcp: what the gateway adds to a green tool call. The same tool
 * (server-everything's echo) in the same kind of warm namespace sandbox,
 * called 1,000 times
 *   - directly with the MCP SDK client over the sandbox's stdio (the peer),
 *   - through the hub + gateway in-process (classify, audit row in SQLite),
 *   - through `luminaguard mcp serve --stdio` as a separate process, as a
 *     desktop client would use it (adds one more stdio hop).
 * The three are interleaved round by round so host noise hits them alike.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { parseConfig } from "../src/config/load.js";
import { toSandboxSpec } from "../src/config/schema.js";
import { BackendSandboxes } from "../src/mcp/sandboxes.js";
import { SandboxStdioTransport } from "../src/mcp/sandbox-transport.js";
import { openHub } from "../src/mcp/open-hub.js";
import { gatewayServer } from "../src/mcp/gateway.js";
import { PolicyApprover } from "../src/approval/approvers/policy.js";
import { stageMcpServers } from "../test/helpers/mcp-servers.js";
import { repoRoot, summarize, table, type Summary } from "./stats.js";

const CALLS = Number(process.env.CALLS ?? 1000);
const WARMUP = 50;
const TARGET_MS = 2;

async function main(): Promise<void> {
  const root = repoRoot();
  const staged = await stageMcpServers(["everything"]);
  const work = mkdtempSync(join(tmpdir(), "lg-bench-mcp-"));
  const sandboxConfig = { mounts: [staged.mount], limits: { memory: "384M" } };
  const raw = {
    mcp: { servers: { ev: { command: staged.node, args: ["/opt/mcp/everything.mjs", "stdio"], sandbox: sandboxConfig } } },
    approval: { approver: "policy" },
    audit: { path: join(work, "audit.db") },
  };
  const config = parseConfig(raw);
  writeFileSync(join(work, "config.json"), JSON.stringify({ ...raw, audit: { path: join(work, "audit-cli.db") } }));

  const sandboxes = new BackendSandboxes();
  const opened = openHub(config, { approver: new PolicyApprover({ allow: [] }), session: "bench" });
  const clients: Client[] = [];
  try {
    // Peer: the SDK client straight to the server in its own warm sandbox.
    const sandbox = await sandboxes.create(toSandboxSpec(parseConfig({ sandbox: sandboxConfig }).sandbox));
    const direct = new Client({ name: "bench-direct", version: "1" });
    await direct.connect(new SandboxStdioTransport(sandbox, { argv: staged.argv("everything", "stdio"), cwd: "/workspace", maxMessageBytes: 16 << 20 }));
    clients.push(direct);

    // In-process gateway over the hub.
    await opened.hub.start();
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await gatewayServer(opened.hub, { approverMode: "policy" }).connect(serverSide);
    const inProcess = new Client({ name: "bench-gateway", version: "1" });
    await inProcess.connect(clientSide);
    clients.push(inProcess);

    // The gateway as its own process, the way desktop clients run it.
    const viaProcess = new Client({ name: "bench-gateway-process", version: "1" });
    await viaProcess.connect(new StdioClientTransport({ command: join(root, "bin", "luminaguard"), args: ["mcp", "serve", "--stdio", "--config", join(work, "config.json")], stderr: "ignore" }));
    clients.push(viaProcess);

    const paths: [string, Client, string][] = [
      ["direct: SDK client -> server in sandbox (peer)", direct, "echo"],
      ["gateway in-process: hub + Approval Cliff + audit", inProcess, "ev__echo"],
      ["gateway process: luminaguard mcp serve --stdio", viaProcess, "ev__echo"],
    ];
    const samples = paths.map(() => [] as number[]);
    const once = async (i: number): Promise<number> => {
      const [, client, tool] = paths[i]!;
      const t0 = performance.now();
      const res = await client.callTool({ name: tool, arguments: { message: "bench" } });
      const ms = performance.now() - t0;
      if (res.isError) throw new Error(`${tool} failed: ${JSON.stringify(res.content)}`);
      return ms;
    };
    for (let r = 0; r < WARMUP; r++) for (let i = 0; i < paths.length; i++) await once(i);
    process.stderr.write(`bench/mcp: ${CALLS} green calls per path, interleaved\n`);
    for (let r = 0; r < CALLS; r++) {
      for (let k = 0; k < paths.length; k++) {
        const i = (r + k) % paths.length;
        samples[i]!.push(await once(i));
      }
      if ((r + 1) % 100 === 0) process.stderr.write(`\r  round ${r + 1}/${CALLS}   `);
    }
    process.stderr.write("\n");

    const rows: Summary[] = paths.map(([name], i) => summarize(name, samples[i]!));
    const [d, g, p] = rows as [Summary, Summary, Summary];
    const added = (s: Summary) => ({ p50: s.p50 - d.p50, p95: s.p95 - d.p95 });
    const targets = [
      { target: `added latency of a green call through the gateway process, p50 < ${TARGET_MS} ms`, value: `${added(p).p50.toFixed(3)} ms (p95 ${added(p).p95.toFixed(3)} ms)`, ok: added(p).p50 < TARGET_MS },
      { target: `added latency in-process (hub + cliff + audit), p50 < ${TARGET_MS} ms`, value: `${added(g).p50.toFixed(3)} ms (p95 ${added(g).p95.toFixed(3)} ms)`, ok: added(g).p50 < TARGET_MS },
    ];
    const out = ["## bench/mcp", "", table(rows), "", "| target | measured | met |", "|---|---|---|", ...targets.map((t) => `| ${t.target} | ${t.value} | ${t.ok ? "yes" : "NO"} |`)].join("\n");
    process.stdout.write(`${out}\n`);
    const dir = join(root, "bench", "results");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `mcp-${new Date().toISOString().replace(/[:.]/g, "-")}.json`), JSON.stringify({ rows, targets }, null, 2));
    writeFileSync(join(dir, "mcp-latest.md"), `${out}\n`);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await opened.close();
    await sandboxes.close();
    await staged.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
