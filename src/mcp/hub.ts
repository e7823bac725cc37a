/**
 * The MCP hub: one connection per configured server, their tools offered under
 * `server__tool` names, and every tools/call sent through the Approval Cliff
 * and written to the audit log. Resources and prompts are forwarded read-only.
 */
import { EventEmitter } from "node:events";
import type { CallToolResult, GetPromptResult, Prompt, ReadResourceResult, Resource, Tool } from "@modelcontextprotocol/sdk/types.js";
import type { McpConfig } from "../config/schema.js";
import type { Approver, Classification, ToolCall } from "../approval/types.js";
import { callHash } from "../approval/call-hash.js";
import type { AuditEntryInput } from "../approval/audit/types.js";
import { LuminaError } from "../errors.js";
import { ServerConnection, type ServerStatus } from "./connection.js";
import { McpError } from "./errors.js";
import { Gate, type GateOptions } from "./gate.js";
import { stdioEndpoints } from "./stdio-endpoint.js";
import { httpEndpoints } from "./http-endpoint.js";
import { BackendSandboxes, type SandboxSource } from "./sandboxes.js";
import { hubToolName, splitHubToolName, validServerToolName } from "./tool-names.js";

/** Where audit rows go (the SQLite store, or a test's array). */
export interface AuditSink {
  append(entry: AuditEntryInput): unknown;
}

export interface HubOptions {
  config: McpConfig;
  gate: GateOptions;
  audit?: AuditSink | undefined;
  sandboxes?: SandboxSource | undefined;
  /** Written into each audit row (a gateway session, a task id). */
  session?: string | undefined;
}

/** A tool as the hub offers it. */
export interface HubTool {
  /** `server__tool`. */
  name: string;
  server: string;
  /** The server's own definition (its name unchanged). */
  definition: Tool;
  /** The tool-level verdict (arguments can still turn a call red). */
  classification: Classification;
}

export interface CallContext {
  signal?: AbortSignal | undefined;
  /** Who approves red calls for this caller (the gateway's elicitation approver); default the hub's. */
  approver?: Approver | undefined;
  /** This call's time limit once approved (default mcp.callTimeoutSeconds). */
  timeoutMs?: number | undefined;
  /** Written to this call's audit row instead of the hub's session (one hub, many tasks). */
  session?: string | undefined;
}

/** The outcome the hub attaches to each result's _meta, for the CLI and the agent loop. */
export const OUTCOME_META = "dev.luminaguard/outcome";
export interface CallOutcome {
  decision: "auto" | "approved" | "denied" | "not-run";
  decidedBy: string | null;
  verdict: "green" | "red";
  code: string | null;
}

export class McpHub extends EventEmitter<{ "tools-changed": []; call: [AuditEntryInput] }> {
  private readonly connections = new Map<string, ServerConnection>();
  private readonly gate: Gate;
  private readonly sandboxes: SandboxSource;
  private readonly resourceOwners = new Map<string, string>();
  private closed = false;
  /** Why the last audit append failed; while set, red calls are refused before anyone is asked. */
  private auditBroken: string | undefined;

  constructor(private readonly opts: HubOptions) {
    super();
    this.gate = new Gate(opts.gate);
    this.sandboxes = opts.sandboxes ?? new BackendSandboxes();
    const { config } = opts;
    const maxMessageBytes = Math.max(config.maxOutputBytes * 4, 16 * 1024 * 1024);
    for (const [name, server] of Object.entries(config.servers)) {
      if (!server.enabled) continue;
      const factory = server.type === "stdio" ? stdioEndpoints(name, server, this.sandboxes, maxMessageBytes) : httpEndpoints(name, server);
      const conn = new ServerConnection(name, factory, { connectTimeoutMs: config.connectTimeoutSeconds * 1000, reconnect: config.reconnect });
      conn.on("tools-changed", () => this.emit("tools-changed"));
      this.connections.set(name, conn);
    }
  }

  /** Connect every server; resolves when each is ready or has failed (see status()). */
  async start(): Promise<void> {
    await Promise.all([...this.connections.values()].map((c) => c.start()));
  }

  /** Why the audit log cannot be written (the last append failed), or undefined when it works. */
  auditFailure(): string | undefined {
    return this.auditBroken;
  }

  status(): ServerStatus[] {
    return [...this.connections.values()].map((c) => c.status());
  }

  /** Every ready server's tools under hub names. Tools whose names MCP clients would reject are left out. */
  tools(): HubTool[] {
    const out: HubTool[] = [];
    for (const conn of this.connections.values()) {
      for (const def of conn.tools) {
        if (!validServerToolName(conn.name, def.name)) continue;
        out.push({ name: hubToolName(conn.name, def.name), server: conn.name, definition: def, classification: this.gate.classify(toCall(conn.name, def, {})) });
      }
    }
    return out;
  }

  /**
   * Call `server__tool` through the Approval Cliff. Unknown tools and bad
   * arguments throw McpError (a protocol error for the client); everything
   * else, including a denial or a crashed server, is a readable tool result
   * with isError set, so an agent can read what happened and go on.
   */
  async call(name: string, args: unknown, ctx: CallContext = {}): Promise<CallToolResult> {
    if (this.closed) throw new McpError("E_MCP_CLOSED", "The MCP hub is shut down.");
    const { conn, def } = this.lookup(name);
    if (args === undefined || args === null) args = {};
    if (typeof args !== "object" || Array.isArray(args)) {
      throw new McpError("E_MCP_BAD_ARGS", `Arguments of ${name} must be a JSON object, not ${Array.isArray(args) ? "an array" : typeof args}.`);
    }
    const call = toCall(conn.name, def, args as Record<string, unknown>);
    const started = performance.now();
    const base = { time: new Date(), server: conn.name, tool: def.name, argsHash: hashOf(call), args: call.args, session: ctx.session ?? this.opts.session ?? null };
    let classification: Classification | undefined;
    let decision: CallOutcome["decision"] = "not-run";
    let decidedBy: string | null = null;
    try {
      const cls = this.auditBroken === undefined ? undefined : this.gate.classify(call);
      if (cls?.verdict === "red") {
        // A red call must never run without its record: refuse before a person is even asked.
        const text = `refused: the audit log cannot be written: ${this.auditBroken}; fix the disk, then retry.`;
        return this.finish(base, cls, "not-run", null, started, errorResult(text, { decision: "not-run", decidedBy: null, verdict: "red", code: "E_AUDIT_WRITE" }), text);
      }
      const gate = await this.gate.pass(call, { reader: conn.reader, approver: ctx.approver, signal: ctx.signal, session: base.session ?? undefined });
      classification = gate.classification;
      decidedBy = gate.decision?.by ?? null;
      if (!gate.run) {
        decision = "denied";
        const text = gate.decision.reason || `denied by ${gate.decision.by}`;
        return this.finish(base, classification, decision, decidedBy, started, errorResult(text, { decision, decidedBy, verdict: "red", code: "E_APPROVAL_DENIED" }), null);
      }
      decision = gate.decision ? "approved" : "auto";
      const timeoutMs = ctx.timeoutMs ?? this.opts.config.callTimeoutSeconds * 1000;
      const result = await conn.callTool(def.name, call.args, { timeoutMs, signal: ctx.signal });
      const size = Buffer.byteLength(JSON.stringify(result));
      const limit = this.opts.config.maxOutputBytes;
      if (size > limit) {
        const err = new McpError("E_MCP_OUTPUT_LIMIT", `${name} returned ${size} bytes, more than mcp.maxOutputBytes (${limit}); the result was dropped. Ask for less (a narrower path, a page) or raise the limit.`);
        return this.finish(base, classification, decision, decidedBy, started, failure(err, { decision, decidedBy, verdict: classification.verdict }), err.message, size);
      }
      result._meta = { ...result._meta, [OUTCOME_META]: { decision, decidedBy, verdict: classification.verdict, code: null } satisfies CallOutcome };
      return this.finish(base, classification, decision, decidedBy, started, result, result.isError ? "the tool reported an error" : null, size);
    } catch (err) {
      const cls = classification ?? this.gate.classify(call);
      return this.finish(base, cls, decision, decidedBy, started, failure(err, { decision, decidedBy, verdict: cls.verdict }), (err as Error).message);
    }
  }

  async listResources(): Promise<Resource[]> {
    const all: Resource[] = [];
    for (const conn of this.readyWith("resources")) {
      const res = await conn.request("resources/list", this.timeoutMs(), (c, o) => c.listResources(undefined, o)).catch(() => undefined);
      for (const r of res?.resources ?? []) {
        this.resourceOwners.set(r.uri, conn.name);
        all.push(r);
      }
    }
    return all;
  }

  async readResource(uri: string): Promise<ReadResourceResult> {
    if (!this.resourceOwners.has(uri)) await this.listResources();
    const owner = this.resourceOwners.get(uri);
    const conn = owner === undefined ? undefined : this.connections.get(owner);
    if (!conn) throw new McpError("E_MCP_UNKNOWN_TOOL", `No connected MCP server offers the resource ${uri}.`);
    return conn.request(`resources/read ${uri}`, this.timeoutMs(), (c, o) => c.readResource({ uri }, o));
  }

  async listPrompts(): Promise<Prompt[]> {
    const all: Prompt[] = [];
    for (const conn of this.readyWith("prompts")) {
      const res = await conn.request("prompts/list", this.timeoutMs(), (c, o) => c.listPrompts(undefined, o)).catch(() => undefined);
      for (const p of res?.prompts ?? []) if (validServerToolName(conn.name, p.name)) all.push({ ...p, name: hubToolName(conn.name, p.name) });
    }
    return all;
  }

  async getPrompt(name: string, args: Record<string, string> | undefined): Promise<GetPromptResult> {
    const split = splitHubToolName(name);
    const conn = split ? this.connections.get(split.server) : undefined;
    if (!split || !conn) throw new McpError("E_MCP_UNKNOWN_TOOL", `No prompt ${name}; prompt names are server__prompt (see prompts/list).`);
    return conn.request(`prompts/get ${name}`, this.timeoutMs(), (c, o) => c.getPrompt({ name: split.tool, ...(args ? { arguments: args } : {}) }, o));
  }

  /** Stop every server and destroy their sandboxes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.connections.values()].map((c) => c.close()));
    await this.sandboxes.close();
  }

  private lookup(name: string): { conn: ServerConnection; def: Tool } {
    const split = typeof name === "string" ? splitHubToolName(name) : undefined;
    if (!split) throw new McpError("E_MCP_UNKNOWN_TOOL", `Tool names are server__tool; '${String(name)}' has no server part. See tools/list.`);
    const conn = this.connections.get(split.server);
    if (!conn) throw new McpError("E_MCP_UNKNOWN_TOOL", `No MCP server named '${split.server}' (configured: ${[...this.connections.keys()].join(", ") || "none"}).`);
    // While the server restarts, a known tool's call waits for it (bounded by the call's timeout) instead of failing at once.
    const def = conn.findTool(split.tool);
    if (!def) {
      if (conn.state !== "ready") throw new McpError("E_MCP_SERVER_UNAVAILABLE", `MCP server '${conn.name}' is ${conn.state}${conn.status().lastError ? ` (${conn.status().lastError})` : ""}; its tools are not available now.`);
      throw new McpError("E_MCP_UNKNOWN_TOOL", `MCP server '${conn.name}' has no tool '${split.tool}'. See tools/list.`);
    }
    return { conn, def };
  }

  private readyWith(capability: "resources" | "prompts"): ServerConnection[] {
    return [...this.connections.values()].filter((c) => c.state === "ready" && c.capabilities()?.[capability]);
  }

  private timeoutMs(): number {
    return this.opts.config.callTimeoutSeconds * 1000;
  }

  private finish(
    base: Pick<AuditEntryInput, "time" | "server" | "tool" | "argsHash" | "args" | "session">,
    cls: Classification,
    decision: CallOutcome["decision"],
    decidedBy: string | null,
    started: number,
    result: CallToolResult,
    error: string | null,
    resultBytes: number | null = null,
  ): CallToolResult {
    const entry: AuditEntryInput = { ...base, verdict: cls.verdict, risk: cls.risk, reason: cls.reason, rule: cls.rule, decision, decidedBy, latencyMs: performance.now() - started, resultBytes, error };
    // The audit write is synchronous and part of the call: a call that cannot be audited must not look like it went unrecorded.
    try {
      this.opts.audit?.append(entry);
      this.auditBroken = undefined; // space came back: red calls are asked again
    } catch (err) {
      this.auditBroken = (err instanceof Error ? err.message : String(err)).replace(/\.$/, "");
      this.emit("call", entry);
      return unrecorded(result, err);
    }
    this.emit("call", entry);
    return result;
  }
}

/** The call's hash; arguments JSON cannot carry faithfully (NaN, bigint, cycles) cannot be bound to an approval. */
function hashOf(call: ToolCall): string {
  try {
    return callHash(call.server, call.tool, call.args);
  } catch (err) {
    throw new McpError("E_MCP_BAD_ARGS", `Arguments of ${call.server}__${call.tool} cannot be sent as JSON faithfully: ${(err as Error).message}`, { cause: err });
  }
}

function toCall(server: string, def: Tool, args: Record<string, unknown>): ToolCall {
  return { server, tool: def.name, args, annotations: def.annotations, description: def.description };
}

function errorResult(text: string, outcome: CallOutcome): CallToolResult {
  return { isError: true, content: [{ type: "text", text }], _meta: { [OUTCOME_META]: outcome } };
}

/**
 * The result of a call whose audit row could not be written: what the tool did is kept
 * (it may have changed something), marked as an error so no caller mistakes it for a
 * recorded call, with the audit error's code in the outcome.
 */
function unrecorded(result: CallToolResult, err: unknown): CallToolResult {
  const code = err instanceof LuminaError ? err.code : "E_AUDIT_WRITE";
  const message = err instanceof Error ? err.message : String(err);
  const prior = (result._meta?.[OUTCOME_META] ?? {}) as Partial<CallOutcome>;
  const outcome: CallOutcome = { decision: prior.decision ?? "not-run", decidedBy: prior.decidedBy ?? null, verdict: prior.verdict ?? "green", code };
  const note = `${code}: this call was not recorded in the audit log: ${message} Red calls are refused until the audit log can be written again; fix the disk, then retry.`;
  return { ...result, isError: true, content: [...result.content, { type: "text", text: note }], _meta: { ...result._meta, [OUTCOME_META]: outcome } };
}

function failure(err: unknown, outcome: Omit<CallOutcome, "code">): CallToolResult {
  const code = err instanceof LuminaError ? err.code : "E_MCP_CALL";
  const message = err instanceof Error ? err.message : String(err);
  return errorResult(`${code}: ${message}`, { ...outcome, code });
}
