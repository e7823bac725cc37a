/**
 * The gateway over Streamable HTTP on a loopback port: one MCP session per
 * client (its own Server object over the shared hub), DNS-rebinding protection
 * so a web page cannot drive it through the user's browser.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import type { McpHub } from "./hub.js";
import { gatewayServer, type GatewayOptions } from "./gateway.js";
import { McpError } from "./errors.js";

export const MCP_PATH = "/mcp";
const MAX_BODY = 4 * 1024 * 1024;

export interface HttpGateway {
  /** The bound port (useful with port 0). */
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Serve the hub at http://<host>:<port>/mcp until close(). */
export async function serveHttp(hub: McpHub, opts: GatewayOptions & { port: number; host?: string }): Promise<HttpGateway> {
  const host = opts.host ?? "127.0.0.1";
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  let port = opts.port;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path !== MCP_PATH) return reply(res, 404, `Not found; the MCP endpoint is ${MCP_PATH}.`);
    const sessionId = header(req, "mcp-session-id");
    let body: unknown;
    if (req.method === "POST") {
      try {
        body = await readJson(req);
      } catch (err) {
        return reply(res, 400, (err as Error).message);
      }
    }
    let transport = sessionId ? sessions.get(sessionId) : undefined;
    if (!transport) {
      if (sessionId) return reply(res, 404, "Unknown or expired MCP session; initialize a new one.");
      if (req.method !== "POST" || !isInitializeRequest(body)) return reply(res, 400, "No MCP session: send an initialize request first.");
      const fresh: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void sessions.set(id, fresh),
        onsessionclosed: (id) => void sessions.delete(id),
        enableDnsRebindingProtection: true,
        allowedHosts: [`${host}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`],
      });
      fresh.onclose = () => {
        if (fresh.sessionId) sessions.delete(fresh.sessionId);
      };
      await gatewayServer(hub, opts).connect(fresh);
      transport = fresh;
    }
    await transport.handleRequest(req, res, body);
  };

  const http: HttpServer = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) reply(res, 500, (err as Error).message);
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once("error", (err: NodeJS.ErrnoException) =>
      reject(new McpError("E_MCP_CONNECT", err.code === "EADDRINUSE" ? `Port ${opts.port} on ${host} is in use; pick another with --http <port>.` : `Cannot listen on ${host}:${opts.port}: ${err.message}`, { cause: err })),
    );
    http.listen(opts.port, host, () => resolve());
  });
  const address = http.address();
  port = typeof address === "object" && address ? address.port : opts.port;
  return {
    port,
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}${MCP_PATH}`,
    async close() {
      await Promise.all([...sessions.values()].map((t) => t.close().catch(() => undefined)));
      sessions.clear();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error(`Request body over ${MAX_BODY} bytes.`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new Error("Request body is not valid JSON.");
  }
}

function reply(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}
