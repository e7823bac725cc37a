/**
 * /mcp: the hub as one MCP server over Streamable HTTP, one session (its own
 * gateway Server) per client, on the web-standard transport so it plugs into
 * hono. Sessions close with the daemon.
 */
import { randomUUID } from "node:crypto";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { gatewayServer } from "../../mcp/gateway.js";
import type { DaemonApp, DaemonContext } from "../context.js";

/** The open MCP sessions, to close on shutdown. */
export interface McpSessions {
  count(): number;
  closeAll(): Promise<void>;
}

/** Mount /mcp; returns its sessions. */
export function mcpRoutes(app: DaemonApp, ctx: DaemonContext): McpSessions {
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>();
  const rpcError = (status: number, message: string): Response =>
    new Response(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }), { status, headers: { "content-type": "application/json" } });

  app.all("/mcp", async (c) => {
    const sessionId = c.req.header("mcp-session-id");
    let parsedBody: unknown;
    if (c.req.method === "POST") {
      try {
        parsedBody = await c.req.json();
      } catch {
        return rpcError(400, "The request body is not valid JSON-RPC (JSON).");
      }
    }
    let transport = sessionId ? sessions.get(sessionId) : undefined;
    if (!transport) {
      if (sessionId) return rpcError(404, "Unknown or expired MCP session; initialize a new one.");
      if (c.req.method !== "POST" || !isInitializeRequest(parsedBody)) return rpcError(400, "No MCP session: send an initialize request first.");
      const fresh = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void sessions.set(id, fresh),
        onsessionclosed: (id) => void sessions.delete(id),
      });
      fresh.onclose = () => {
        if (fresh.sessionId) sessions.delete(fresh.sessionId);
      };
      await gatewayServer(ctx.hub, { approverMode: ctx.config.approval.approver }).connect(fresh);
      transport = fresh;
    }
    return transport.handleRequest(c.req.raw, { parsedBody });
  });

  return {
    count: () => sessions.size,
    async closeAll() {
      const all = [...sessions.values()];
      sessions.clear();
      await Promise.all(all.map((t) => t.close().catch(() => undefined)));
    },
  };
}
