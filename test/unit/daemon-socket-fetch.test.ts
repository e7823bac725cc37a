/**
 * The fetch over a Unix socket that `mcp list/call` use to reach the daemon's
 * /mcp: method, path, headers and body reach the server; status and headers
 * come back; the body streams (a chunk is readable before the server sends
 * the next); abort rejects a pending answer and errors a streaming body; a
 * missing socket is E_DAEMON_NOT_RUNNING; and the MCP SDK's Streamable HTTP
 * client works through it, SSE answers included.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import * as z from "zod/mini";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { socketFetch } from "../../src/daemon/socket-fetch.js";

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

let dir: string;
let socket: string;
let server: Server;
let handler: Handler = (_req, res) => void res.end();
/** Each request's end, as the server saw it: "closed" when the client went away first. */
const ended: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lg-sockfetch-"));
  socket = join(dir, "s.sock");
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handler(req, res, Buffer.concat(chunks)));
    res.on("close", () => ended.push(res.writableFinished ? "finished" : "closed"));
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("socketFetch", () => {
  it("sends method, path, query, headers and body; returns status, status text and headers", async () => {
    let seen: { method?: string; url?: string; host?: string; type?: string; custom?: string; body?: string } = {};
    handler = (req, res, body) => {
      seen = { method: req.method, url: req.url, host: req.headers.host, type: req.headers["content-type"], custom: req.headers["x-one"] as string, body: body.toString() };
      res.statusCode = 201;
      res.statusMessage = "Made";
      res.setHeader("x-many", ["a", "b"]);
      res.setHeader("content-type", "application/json");
      res.end('{"ok":true}');
    };
    const res = await socketFetch(socket)("http://luminaguard/mcp?x=1", { method: "POST", headers: { "content-type": "application/json", "x-one": "1" }, body: '{"a":1}' });
    expect(res.status).toBe(201);
    expect(res.statusText).toBe("Made");
    expect(res.ok).toBe(true);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("x-many")).toBe("a, b");
    expect(await res.json()).toEqual({ ok: true });
    expect(seen).toEqual({ method: "POST", url: "/mcp?x=1", host: "luminaguard", type: "application/json", custom: "1", body: '{"a":1}' });
  });

  it("gives error statuses back as answers, and 204 with a null body", async () => {
    handler = (req, res) => {
      if (req.url === "/none") return void res.writeHead(204).end();
      res.writeHead(404, { "content-type": "text/plain" }).end("nope");
    };
    const f = socketFetch(socket);
    const missing = await f("http://luminaguard/x", { headers: new Headers({ accept: "text/plain" }) });
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe("nope");
    const none = await f(new URL("http://luminaguard/none"), { method: "DELETE" });
    expect(none.status).toBe(204);
    expect(none.body).toBeNull();
  });

  it("streams the body: the first event is readable before the server sends the second", async () => {
    let sendRest!: () => void;
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: one\n\n");
      sendRest = () => res.end("data: two\n\n");
    };
    const res = await socketFetch(socket)("http://luminaguard/events");
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe("data: one\n\n");
    // Only now does the server send the rest: a buffering fetch would still be waiting for the end.
    sendRest();
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toBe("data: two\n\n");
  });

  it("abort before the answer rejects with an AbortError and closes the request", async () => {
    let arrived!: () => void;
    const waiting = new Promise<void>((resolve) => (arrived = resolve));
    handler = () => arrived(); // never answers
    const before = ended.length;
    const ctl = new AbortController();
    const pending = socketFetch(socket)("http://luminaguard/slow", { signal: ctl.signal });
    await waiting;
    ctl.abort();
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    await expect.poll(() => ended.slice(before)).toEqual(["closed"]);
    // An already aborted signal never connects.
    await expect(socketFetch(socket)("http://luminaguard/slow", { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: "AbortError" });
  });

  it("abort while the body streams errors the body with the abort reason", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: one\n\n");
    };
    const before = ended.length;
    const ctl = new AbortController();
    const res = await socketFetch(socket)("http://luminaguard/events", { signal: ctl.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ctl.abort();
    await expect(reader.read()).rejects.toMatchObject({ name: "AbortError" });
    await expect.poll(() => ended.slice(before)).toEqual(["closed"]);
  });

  it("no socket: E_DAEMON_NOT_RUNNING naming the socket", async () => {
    const gone = join(dir, "gone.sock");
    await expect(socketFetch(gone)("http://luminaguard/health")).rejects.toMatchObject({ code: "E_DAEMON_NOT_RUNNING", message: expect.stringContaining(gone) });
  });

  it("carries the MCP SDK's Streamable HTTP client, SSE answers and notifications included", async () => {
    const sessions = new Map<string, StreamableHTTPServerTransport>();
    handler = (req, res, raw) => {
      void (async () => {
        const body: unknown = raw.length > 0 ? JSON.parse(raw.toString()) : undefined;
        const id = req.headers["mcp-session-id"] as string | undefined;
        let transport = id ? sessions.get(id) : undefined;
        if (!transport && isInitializeRequest(body)) {
          const fresh = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (sid) => void sessions.set(sid, fresh) });
          const mcp = new McpServer({ name: "t", version: "1" }, { capabilities: { logging: {} } });
          mcp.registerTool("count", { inputSchema: { n: z.number() } }, async ({ n }, extra) => {
            // Notifications before the result make the answer an SSE stream, not one JSON body.
            for (let i = 1; i <= n; i++) await extra.sendNotification({ method: "notifications/message", params: { level: "info", data: `tick ${i}` } });
            return { content: [{ type: "text", text: `counted to ${n}` }] };
          });
          await mcp.connect(fresh);
          transport = fresh;
        }
        if (!transport) return void res.writeHead(400).end();
        await transport.handleRequest(req, res, body);
      })();
    };
    const client = new Client({ name: "c", version: "1" });
    const logs: string[] = [];
    const transport = new StreamableHTTPClientTransport(new URL("http://luminaguard/mcp"), { fetch: socketFetch(socket) });
    await client.connect(transport);
    try {
      client.fallbackNotificationHandler = async (n) => void logs.push(String((n.params as { data?: unknown }).data));
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["count"]);
      const res = (await client.callTool({ name: "count", arguments: { n: 3 } })) as CallToolResult;
      expect(res.content).toEqual([{ type: "text", text: "counted to 3" }]);
      expect(logs).toEqual(["tick 1", "tick 2", "tick 3"]);
      await transport.terminateSession();
    } finally {
      await client.close();
      for (const t of sessions.values()) await t.close();
    }
  });
});
