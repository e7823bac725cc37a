/**
 * The hub and a Streamable HTTP server that forgot our session (it restarted):
 * the spec's answer is 404 to the old session id, and the client must open a
 * new session. Over loopback, no namespaces needed, so this runs everywhere
 * (the namespace version with a real partition is http-mcp.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { McpHub } from "../../src/mcp/hub.js";
import { parseConfig } from "../../src/config/load.js";
import type { Approver, Decision, DiffCard } from "../../src/approval/types.js";
import { MemoryAudit, outcome, text } from "../helpers/mcp-hub.js";
import { freePort, startProcess, waitForPort, type Started } from "../helpers/loopback.js";
import { eventually } from "../helpers/procs.js";

const SERVER = join(import.meta.dirname, "fixtures", "counter-server.mjs");

class YesApprover implements Approver {
  readonly name = "yes";
  async decide(card: DiffCard): Promise<Decision> {
    return { approved: true, by: "test", reason: "approved by test", hash: card.hash };
  }
}

describe("hub and an HTTP MCP server that lost our session", () => {
  let port: number;
  let server: Started;
  let hub: McpHub;

  const startServer = async (): Promise<void> => {
    server = startProcess([process.execPath, SERVER, "127.0.0.1", String(port)]);
    await waitForPort(port);
  };

  beforeAll(async () => {
    port = await freePort();
    await startServer();
    const config = parseConfig({
      mcp: {
        servers: { ctr: { url: `http://127.0.0.1:${port}/mcp`, allow: [`127.0.0.1:${port}`], transport: "streamable-http" } },
        callTimeoutSeconds: 5,
        reconnect: { attempts: 3, baseMs: 50, maxMs: 200 },
      },
    });
    hub = new McpHub({ config: config.mcp, gate: { rules: [], workspaceRoots: ["/workspace"], timeoutMs: 5_000, approver: new YesApprover() }, audit: new MemoryAudit() });
    await hub.start();
  }, 30_000);

  afterAll(async () => {
    await hub?.close();
    await server?.stop();
  });

  it("reports the refused call clearly, opens a new session by itself, and never re-sends the call", async () => {
    expect(outcome(await hub.call("ctr__bump", { tag: "first" })).code).toBeNull();
    await server.stop();
    await startServer(); // same address, fresh process: our session id is unknown to it

    const refused = await hub.call("ctr__bump", { tag: "refused" });
    expect(outcome(refused).code).toBe("E_MCP_SERVER_CRASHED");
    expect(text(refused)).toMatch(/no longer knows our session \(HTTP 404/);
    expect(text(refused)).toMatch(/Retry the call/);

    // Reconnects on its own (bounded backoff); meanwhile calls fail fast with a typed error.
    expect(await eventually(() => hub.status()[0]!.state === "ready" && hub.tools().length > 0, 10_000)).toBe(true);
    expect(hub.status()[0]!.restarts).toBe(1);
    const count = await hub.call("ctr__count", {});
    expect(outcome(count).code).toBeNull();
    // The refused bump never ran on the new process, and the hub did not re-send it.
    expect(JSON.parse(text(count))).toEqual({ count: 0, seen: [] });
    expect(outcome(await hub.call("ctr__bump", { tag: "again" })).code).toBeNull();
    expect(JSON.parse(text(await hub.call("ctr__count", {})))).toEqual({ count: 1, seen: ["again"] });
  }, 30_000);
});
