/**
 * Remote MCP servers over HTTP from loopback ports: the real server-everything
 * over Streamable HTTP, and over the older HTTP+SSE (reached by the automatic
 * fallback); the egress allow-list; and the retry rules (never on 401, bounded
 * retries on 503).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import { McpHub } from "../../src/mcp/hub.js";
import { parseConfig } from "../../src/config/load.js";
import { stageMcpServers, type StagedServers } from "../helpers/mcp-servers.js";
import { MemoryAudit, outcome, ScriptedApprover, text } from "../helpers/mcp-hub.js";
import { freePort, startProcess, waitForPort, type Started } from "../helpers/loopback.js";
import { eventually } from "../helpers/procs.js";


function hubFor(servers: Record<string, unknown>, approver = new ScriptedApprover(), audit = new MemoryAudit(), reconnect = { attempts: 2, baseMs: 20, maxMs: 50 }): McpHub {
  const config = parseConfig({ mcp: { servers, reconnect, connectTimeoutSeconds: 10 } });
  return new McpHub({ config: config.mcp, gate: { rules: [], workspaceRoots: ["/workspace"], timeoutMs: 5_000, approver }, audit });
}

describe("MCP hub with remote servers over HTTP", () => {
  let staged: StagedServers;
  let streamable: Started;
  let sse: Started;
  let streamablePort: number;
  let ssePort: number;

  beforeAll(async () => {
    staged = await stageMcpServers(["everything"]);
    [streamablePort, ssePort] = [await freePort(), await freePort()];
    streamable = startProcess([process.execPath, staged.hostPath("everything"), "streamableHttp"], { PORT: String(streamablePort) });
    sse = startProcess([process.execPath, staged.hostPath("everything"), "sse"], { PORT: String(ssePort) });
    await Promise.all([waitForPort(streamablePort), waitForPort(ssePort)]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([streamable?.stop(), sse?.stop()]);
    await staged?.cleanup();
  });

  it("talks Streamable HTTP to server-everything: tools, annotations, a call, audited", async () => {
    const audit = new MemoryAudit();
    const approver = new ScriptedApprover();
    const hub = hubFor({ ev: { url: `http://127.0.0.1:${streamablePort}/mcp`, allow: [`127.0.0.1:${streamablePort}`] } }, approver, audit);
    try {
      await hub.start();
      expect(hub.status()[0]).toMatchObject({ state: "ready", kind: "http" });
      expect(hub.status()[0]!.where).toContain("Streamable HTTP");
      const echo = hub.tools().find((t) => t.name === "ev__echo");
      expect(echo?.definition.annotations?.readOnlyHint).toBe(true);
      expect(text(await hub.call("ev__echo", { message: "over http" }))).toContain("over http");
      expect(audit.rows.at(-1)).toMatchObject({ server: "ev", tool: "echo", decision: "auto" });
      // Notifications over HTTP: tools added after initialize arrive through tools/list_changed.
      expect(await eventually(() => hub.tools().some((t) => t.name === "ev__trigger-sampling-request"), 10_000)).toBe(true);
      approver.answers.push(true, true);
      const sampling = await hub.call("ev__trigger-sampling-request", { prompt: "hi", maxTokens: 5 });
      expect(sampling.isError).toBe(true);
      expect(text(sampling)).toMatch(/does not let MCP servers ask the model/);
      const long = await hub.call("ev__trigger-long-running-operation", { duration: 1, steps: 2 });
      expect(text(long)).toMatch(/completed/i);
    } finally {
      await hub.close();
    }
  });

  it("a server that goes away mid-session: the call fails typed, is not re-sent, and the hub opens a new session when it is back", async () => {
    const port = await freePort();
    const start = () => startProcess([process.execPath, staged.hostPath("everything"), "streamableHttp"], { PORT: String(port) });
    let server = start();
    await waitForPort(port);
    // Enough reconnect budget (~15 s) to outlast the server's restart.
    const hub = hubFor({ ev: { url: `http://127.0.0.1:${port}/mcp`, allow: [`127.0.0.1:${port}`], transport: "streamable-http" } }, undefined, undefined, { attempts: 30, baseMs: 100, maxMs: 500 });
    try {
      await hub.start();
      expect(hub.status()[0]!.state).toBe("ready");
      await server.stop();
      const res = await hub.call("ev__echo", { message: "into the void" });
      expect(outcome(res).code).toBe("E_MCP_SERVER_CRASHED");
      expect(text(res)).toMatch(/connection to MCP server 'ev' broke .* was not re-sent/);
      server = start();
      await waitForPort(port);
      expect(await eventually(() => hub.status()[0]!.state === "ready", 20_000, 100)).toBe(true);
      expect(hub.status()[0]!.restarts).toBe(1);
      expect(text(await hub.call("ev__echo", { message: "back" }))).toContain("back");
    } finally {
      await hub.close();
      await server.stop();
    }
  });

  it("falls back to HTTP+SSE for a server that only speaks the older transport", async () => {
    const hub = hubFor({ old: { url: `http://127.0.0.1:${ssePort}/sse`, allow: [`127.0.0.1:${ssePort}`] } });
    try {
      await hub.start();
      expect(hub.status()[0]).toMatchObject({ state: "ready" });
      expect(hub.status()[0]!.where).toContain("HTTP+SSE");
      expect(text(await hub.call("old__echo", { message: "via sse" }))).toContain("via sse");
    } finally {
      await hub.close();
    }
  });

  it("does not connect to a server whose address is not in its allow-list", async () => {
    let hits = 0;
    const srv = createServer((_req, res) => (hits++, res.writeHead(500).end()));
    const port = await listen(srv);
    const hub = hubFor({ ev: { url: `http://127.0.0.1:${port}/mcp`, allow: ["127.0.0.1:1"] } });
    try {
      await hub.start();
      const st = hub.status()[0]!;
      expect(st.state).toBe("failed");
      expect(st.lastError).toMatch(/not in its egress allow-list/);
      expect(hits).toBe(0);
    } finally {
      await hub.close();
      srv.close();
    }
  });

  it("never retries an auth refusal, and retries 503 a bounded number of times", async () => {
    let authHits = 0;
    let busyHits = 0;
    const auth = createServer((_req, res) => (authHits++, res.writeHead(401).end("no")));
    const busy = createServer((_req, res) => (busyHits++, res.writeHead(503).end("busy")));
    const [authPort, busyPort] = [await listen(auth), await listen(busy)];
    const hub = hubFor({
      a: { url: `http://127.0.0.1:${authPort}/mcp`, allow: [`127.0.0.1:${authPort}`], transport: "streamable-http" },
      b: { url: `http://127.0.0.1:${busyPort}/mcp`, allow: [`127.0.0.1:${busyPort}`], transport: "streamable-http" },
    });
    try {
      await hub.start();
      const [a, b] = hub.status();
      expect(a).toMatchObject({ state: "failed" });
      expect(a!.lastError).toMatch(/refused our credentials \(HTTP 401\)/);
      expect(authHits).toBe(1);
      expect(b).toMatchObject({ state: "failed" });
      expect(busyHits).toBe(3); // the first try and reconnect.attempts (2) retries
      await expect(hub.call("b__anything", {})).rejects.toMatchObject({ code: "E_MCP_SERVER_UNAVAILABLE" });
    } finally {
      await hub.close();
      auth.close();
      busy.close();
    }
  });
});

async function listen(srv: Server): Promise<number> {
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  return (srv.address() as { port: number }).port;
}
