/**
 * `luminaguard mcp serve` as any MCP client sees it: an SDK client over stdio
 * and over Streamable HTTP gets the aggregated tools, green calls run, and red
 * calls are approved or denied through MCP elicitation in the client itself.
 * The audit log the gateway wrote verifies with `luminaguard audit verify`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema, type CallToolResult, type ElicitRequest, type ElicitResult } from "@modelcontextprotocol/sdk/types.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { text } from "../helpers/mcp-hub.js";
import { stageMcpServers, type StagedServers } from "../helpers/mcp-servers.js";
import { freePort, startProcess, waitForPort } from "../helpers/loopback.js";
import { eventually, pidsWithMarker } from "../helpers/procs.js";

const skip = namespaceSkipReason();
announceSkip("MCP gateway (luminaguard mcp serve)", skip);

const bin = resolve(import.meta.dirname, "../../bin/luminaguard");

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(bin, args, { encoding: "utf8", timeout: 60_000, env: { ...process.env, NO_COLOR: "1" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(skip)("luminaguard mcp serve", () => {
  let staged: StagedServers;
  let dir: string;
  let configPath: string;
  let dbPath: string;

  beforeAll(async () => {
    staged = await stageMcpServers(["filesystem"]);
    dir = await mkdtemp(join(tmpdir(), "lg-gw-"));
    configPath = join(dir, "config.json");
    dbPath = join(dir, "audit.db");
    const config = {
      mcp: { servers: { fs: { command: staged.node, args: ["/opt/mcp/filesystem.mjs", "/workspace"], sandbox: { mounts: [staged.mount], limits: { memory: "384M" } } } } },
      approval: { approver: "auto", timeoutSeconds: 30 },
      audit: { path: dbPath },
    };
    await writeFile(configPath, JSON.stringify(config));
  }, 60_000);

  afterAll(async () => {
    await staged?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("over stdio: aggregated tools, a green call, and red calls approved and denied by elicitation", async () => {
    const answers: ElicitResult[] = [{ action: "accept", content: { approve: true } }, { action: "decline" }];
    const asked: string[] = [];
    const client = new Client({ name: "test-client", version: "1" }, { capabilities: { elicitation: { form: {} } } });
    client.setRequestHandler(ElicitRequestSchema, (req: ElicitRequest) => {
      asked.push(String(req.params.message));
      return answers.shift() ?? { action: "decline" };
    });
    await client.connect(new StdioClientTransport({ command: bin, args: ["mcp", "serve", "--stdio", "--config", configPath], stderr: "pipe" }));
    try {
      const tools = (await client.listTools()).tools;
      const write = tools.find((t) => t.name === "fs__write_file");
      expect(write?.description).toMatch(/^\[needs approval\]/);
      expect(tools.some((t) => t.name === "fs__read_text_file")).toBe(true);

      const written = (await client.callTool({ name: "fs__write_file", arguments: { path: "/workspace/hello.txt", content: "hello from the gateway\n" } })) as CallToolResult;
      expect(written.isError).toBeFalsy();
      expect(asked[0]).toContain("+hello from the gateway");
      const read = (await client.callTool({ name: "fs__read_text_file", arguments: { path: "/workspace/hello.txt" } })) as CallToolResult;
      expect(text(read)).toBe("hello from the gateway\n");
      expect(asked.length).toBe(1); // the read was green: nobody was asked

      const denied = (await client.callTool({ name: "fs__write_file", arguments: { path: "/workspace/hello.txt", content: "overwritten\n" } })) as CallToolResult;
      expect(denied.isError).toBe(true);
      expect(text(denied)).toMatch(/denied by user/);
      expect(text((await client.callTool({ name: "fs__read_text_file", arguments: { path: "/workspace/hello.txt" } })) as CallToolResult)).toBe("hello from the gateway\n");

      await expect(client.callTool({ name: "fs__no_such_tool", arguments: {} })).rejects.toThrow(/E_MCP_UNKNOWN_TOOL/);
    } finally {
      await client.close();
    }

    // The client closing stdin ends the gateway, and with it every server process (bwrap's argv names the staged folder).
    expect(await eventually(() => pidsWithMarker(staged.dir).length === 0, 10_000)).toBe(true);

    const list = cli(["audit", "list", "--json", "--db", dbPath]);
    expect(list.status).toBe(0);
    const rows = JSON.parse(list.stdout) as { tool: string; decision: string; decidedBy: string | null }[];
    expect(rows.map((r) => `${r.tool}:${r.decision}`)).toEqual(["read_text_file:auto", "write_file:denied", "read_text_file:auto", "write_file:approved"]);
    expect(rows.find((r) => r.decision === "approved")?.decidedBy).toBe("elicitation");
    const verify = cli(["audit", "verify", "--db", dbPath]);
    expect(verify.status, verify.stderr + verify.stdout).toBe(0);
  }, 90_000);

  it("over Streamable HTTP on a loopback port", async () => {
    const port = await freePort();
    const server = startProcess([bin, "mcp", "serve", "--http", String(port), "--config", configPath]);
    try {
      await waitForPort(port, 30_000);
      const client = new Client({ name: "http-client", version: "1" });
      await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
      const tools = (await client.listTools()).tools.map((t) => t.name);
      expect(tools).toContain("fs__list_directory");
      const listing = (await client.callTool({ name: "fs__list_directory", arguments: { path: "/workspace" } })) as CallToolResult;
      expect(listing.isError).toBeFalsy();
      // No elicitation in this client and no terminal: the policy approver denies red calls.
      const denied = (await client.callTool({ name: "fs__write_file", arguments: { path: "/workspace/x.txt", content: "x" } })) as CallToolResult;
      expect(denied.isError).toBe(true);
      expect(text(denied)).toMatch(/denied by policy/);
      await client.close();
    } finally {
      await server.stop("SIGTERM");
    }
    expect(server.child.exitCode, server.stderr()).toBe(0);
    expect(server.stderr()).toContain("destroying their sandboxes");
    expect(pidsWithMarker(staged.dir)).toEqual([]);
  }, 90_000);
});
