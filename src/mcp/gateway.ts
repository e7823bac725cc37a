/**
 * The gateway: the hub served as one MCP server to any MCP client (Claude
 * Desktop, Cursor, an SDK client), over stdio or Streamable HTTP. Every
 * tools/call goes through the hub, so through the Approval Cliff; when the
 * client can answer elicitation requests, red calls are approved in the
 * client itself.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError as SdkMcpError,
  ReadResourceRequestSchema,
  type ElicitRequestFormParams,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import { ElicitationApprover } from "../approval/approvers/elicitation.js";
import type { Approver } from "../approval/types.js";
import type { McpHub } from "./hub.js";
import { McpError } from "./errors.js";

export interface GatewayOptions {
  /** "auto" and "elicitation" use the client's elicitation when it supports it; other modes always use the hub's approver. */
  approverMode: "auto" | "terminal" | "policy" | "elicitation" | "api";
}

export const GATEWAY_INFO = { name: "luminaguard", version: "0.1.0" };

/** Each listed tool's Classification, in its `_meta` (what `mcp list` on a daemon prints). */
export const CLASSIFICATION_META = "dev.luminaguard/classification";
/** A tools/call `_meta` key naming the caller's session, so its queued card can be told from others. */
export const SESSION_META = "dev.luminaguard/session";
/** Only CLI-made session ids are taken: a client must not pass its calls off as a task's. */
const CLIENT_SESSION = /^cli-[0-9a-f]{8,32}$/;

/** One MCP server session over the hub (a stdio gateway has one; the HTTP gateway one per client session). */
export function gatewayServer(hub: McpHub, opts: GatewayOptions): Server {
  const server = new Server(GATEWAY_INFO, {
    capabilities: { tools: { listChanged: true }, resources: {}, prompts: {} },
    instructions: "Tools from the MCP servers LuminaGuard runs in sandboxes, named server__tool. Calls that change things wait for a person's approval; a denied call returns a readable result.",
  });
  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: hub.tools().map((t): Tool => ({ ...t.definition, name: t.name, description: describe(t.definition, t.classification.verdict), _meta: { ...t.definition._meta, [CLASSIFICATION_META]: t.classification } })),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const asked = req.params._meta?.[SESSION_META];
    const session = typeof asked === "string" && CLIENT_SESSION.test(asked) ? asked : undefined;
    try {
      return await hub.call(req.params.name, req.params.arguments, { signal: extra.signal, approver: elicitationFor(server, opts), session });
    } catch (err) {
      throw protocolError(err);
    }
  });
  server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: await hub.listResources() }));
  server.setRequestHandler(ReadResourceRequestSchema, async (req) => hub.readResource(req.params.uri).catch((err: unknown) => Promise.reject(protocolError(err))));
  server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: await hub.listPrompts() }));
  server.setRequestHandler(GetPromptRequestSchema, async (req) => hub.getPrompt(req.params.name, req.params.arguments).catch((err: unknown) => Promise.reject(protocolError(err))));
  const onToolsChanged = (): void => {
    void server.sendToolListChanged().catch(() => undefined);
  };
  hub.on("tools-changed", onToolsChanged);
  const previous = server.onclose;
  server.onclose = () => {
    hub.off("tools-changed", onToolsChanged);
    previous?.();
  };
  return server;
}

/** The client's own approval UI, when it has one and the config lets us use it. */
function elicitationFor(server: Server, opts: GatewayOptions): Approver | undefined {
  if (opts.approverMode !== "auto" && opts.approverMode !== "elicitation") return undefined;
  if (!server.getClientCapabilities()?.elicitation) return undefined;
  return new ElicitationApprover({
    elicit: async (message, requestedSchema, o) => {
      // The client's dialog waits as long as the approval may; then the question is withdrawn.
      const res = await server.elicitInput({ mode: "form", message, requestedSchema } as ElicitRequestFormParams, o ? { signal: o.signal, timeout: o.timeoutMs } : undefined);
      return { action: res.action, ...(res.content ? { content: res.content } : {}) };
    },
  });
}

function describe(def: Tool, verdict: "green" | "red"): string {
  const tag = verdict === "red" ? "[needs approval] " : "";
  return `${tag}${def.description ?? ""}`.trim();
}

/** Our errors as JSON-RPC errors: unknown tools and bad arguments are the caller's mistake (invalid params). */
function protocolError(err: unknown): Error {
  if (err instanceof McpError) {
    const code = err.code === "E_MCP_UNKNOWN_TOOL" || err.code === "E_MCP_BAD_ARGS" ? ErrorCode.InvalidParams : ErrorCode.InternalError;
    return new SdkMcpError(code, `${err.code}: ${err.message}`);
  }
  return err instanceof Error ? err : new Error(String(err));
}
