/**
 * Loopback stand-ins for the model APIs: a node:http server on 127.0.0.1 that
 * records every request and answers from a script in the provider's real wire
 * format (JSON, SSE, NDJSON), so the official SDKs run unmodified against it.
 * Plus a small fake hub for loop tests that need no sandbox.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types.js";
import type { CallContext, HubTool } from "../../src/mcp/hub.js";
import { OUTCOME_META } from "../../src/mcp/hub.js";
import type { AgentHub } from "../../src/agent/loop.js";
import type { TranscriptInput } from "../../src/agent/transcript.js";

export interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export type Reply =
  | { status?: number; headers?: Record<string, string>; json: unknown }
  /** Server-sent events; `drop` cuts the connection after them instead of ending the stream. */
  | { sse: { event?: string; data: unknown }[]; done?: boolean; drop?: boolean }
  | { ndjson: unknown[] }
  /** Never answer (until the client gives up or the server closes). */
  | { hang: true };

export interface LlmServer {
  url: string;
  requests: Recorded[];
  close(): Promise<void>;
}

/** Start a server that answers request n with `script(req, n)`. */
export async function startLlmServer(script: (req: Recorded, n: number) => Reply): Promise<LlmServer> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // keep the text
      }
      const rec: Recorded = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body };
      requests.push(rec);
      answer(res, script(rec, requests.length - 1));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function answer(res: ServerResponse, reply: Reply): void {
  if ("hang" in reply) return;
  if ("json" in reply) {
    res.writeHead(reply.status ?? 200, { "content-type": "application/json", ...reply.headers });
    res.end(JSON.stringify(reply.json));
    return;
  }
  if ("sse" in reply) {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    for (const e of reply.sse) res.write(`${e.event ? `event: ${e.event}\n` : ""}data: ${JSON.stringify(e.data)}\n\n`);
    if (reply.drop) {
      // Let the events reach the client first, then cut the connection mid-stream.
      setTimeout(() => res.socket?.destroy(), 50);
      return;
    }
    if (reply.done) res.write("data: [DONE]\n\n");
    res.end();
    return;
  }
  res.writeHead(200, { "content-type": "application/x-ndjson" });
  for (const line of reply.ndjson) res.write(`${JSON.stringify(line)}\n`);
  res.end();
}

/** A JSON Schema like the filesystem server's read tool has. */
export const PATH_SCHEMA = { type: "object", properties: { path: { type: "string", description: "file path" } }, required: ["path"] } as const;

/** A stand-in hub: fixed tools, a handler per call, every call recorded. */
export class FakeHub implements AgentHub {
  readonly calls: { name: string; args: unknown; ctx: CallContext | undefined }[] = [];

  constructor(
    private readonly defs: { name: string; verdict?: "green" | "red"; schema?: Record<string, unknown>; description?: string }[],
    private readonly handler: (name: string, args: Record<string, unknown>, ctx: CallContext | undefined) => Promise<CallToolResult> | CallToolResult = (name) => ok(`ran ${name}`),
  ) {}

  tools(): HubTool[] {
    return this.defs.map((d) => {
      const at = d.name.indexOf("__");
      const definition: Tool = { name: d.name.slice(at + 2), description: d.description ?? `the ${d.name} tool`, inputSchema: (d.schema ?? PATH_SCHEMA) as Tool["inputSchema"] };
      const verdict = d.verdict ?? "green";
      return { name: d.name, server: d.name.slice(0, at), definition, classification: { verdict, risk: verdict === "red" ? "high" : "low", reason: "test", rule: "test" } };
    });
  }

  async call(name: string, args: unknown, ctx?: CallContext): Promise<CallToolResult> {
    this.calls.push({ name, args, ctx });
    return this.handler(name, args as Record<string, unknown>, ctx);
  }
}

/** A successful tool result with the hub's outcome. */
export function ok(text: string): CallToolResult {
  return { content: [{ type: "text", text }], _meta: { [OUTCOME_META]: { decision: "auto", decidedBy: null, verdict: "green", code: null } } };
}

/** A denial as the hub returns it. */
export function denied(text = "denied by test: not this one"): CallToolResult {
  return { isError: true, content: [{ type: "text", text }], _meta: { [OUTCOME_META]: { decision: "denied", decidedBy: "test", verdict: "red", code: "E_APPROVAL_DENIED" } } };
}

/** A transcript kept in memory (the loop's records, for assertions). */
export class MemoryTranscript {
  readonly path = null;
  readonly records: TranscriptInput[] = [];
  constructor(readonly id = "test-task") {}
  write(record: TranscriptInput): void {
    // A deep copy: the loop keeps mutating its conversation array.
    this.records.push(structuredClone(record));
  }
}
