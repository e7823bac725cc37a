/**
 * One configured MCP server as the hub sees it: connects (with bounded,
 * jittered retries), keeps its tool list fresh on list-changed notifications,
 * and when the server dies, fails its in-flight calls with a clear error and
 * starts it again on a fresh endpoint (a fresh sandbox for stdio servers).
 */
import { EventEmitter } from "node:events";
import * as z from "zod/v4";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ErrorCode,
  McpError as SdkMcpError,
  ToolListChangedNotificationSchema,
  ToolSchema,
  type CallToolResult,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js";
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "./errors.js";
import { backoffDelay, httpStatusOf, isRetryable, sleep, type BackoffOptions } from "./backoff.js";
import type { EndpointFactory, ServerEndpoint } from "./endpoint.js";
import type { ContentReader } from "../approval/reader.js";

export type ServerState = "starting" | "ready" | "restarting" | "failed" | "closed";

export interface ConnectionOptions {
  connectTimeoutMs: number;
  reconnect: BackoffOptions;
}

export interface ServerStatus {
  name: string;
  kind: "stdio" | "http";
  where: string;
  state: ServerState;
  tools: number;
  restarts: number;
  /** Why the server is failed or restarting. */
  lastError: string | undefined;
}

/** tools/list pages read at most (a server that keeps handing out cursors must not loop us forever). */
const MAX_TOOL_PAGES = 100;

/** tools/list as received: the list is checked here, each tool on its own in listAllTools. */
const LenientToolList = z.looseObject({ tools: z.array(z.unknown()), nextCursor: z.optional(z.string()) });

/** The name the hub presents upstream. */
const CLIENT_INFO = { name: "luminaguard-hub", version: "0.1.0" };

export class ServerConnection extends EventEmitter<{ "tools-changed": []; state: [ServerState] }> {
  private stateValue: ServerState = "starting";
  private client: Client | undefined;
  private endpoint: ServerEndpoint | undefined;
  private toolList: Tool[] = [];
  /** The tools before the last restart: a call for one of them waits for the restart instead of failing at once. */
  private previousTools: Tool[] = [];
  private restarts = 0;
  private lastError: string | undefined;
  private readonly stop = new AbortController();
  private readyWaiters = new Set<() => void>();
  private loop: Promise<void> | undefined;

  constructor(
    readonly name: string,
    private factory: EndpointFactory,
    private readonly opts: ConnectionOptions,
  ) {
    super();
  }

  get state(): ServerState {
    return this.stateValue;
  }

  get tools(): readonly Tool[] {
    return this.toolList;
  }

  /** A tool by name: from the live list, or while restarting from the list before the restart. */
  findTool(name: string): Tool | undefined {
    return this.toolList.find((t) => t.name === name) ?? (this.stateValue === "restarting" ? this.previousTools.find((t) => t.name === name) : undefined);
  }

  /** Reads files where the live server sees them, for Diff Cards. */
  get reader(): ContentReader | undefined {
    return this.endpoint?.reader;
  }

  status(): ServerStatus {
    return { name: this.name, kind: this.factory.kind, where: this.factory.where, state: this.stateValue, tools: this.toolList.length, restarts: this.restarts, lastError: this.lastError };
  }

  /** Connect in the background; resolves once the server is ready or has failed for good (never rejects). */
  start(): Promise<void> {
    this.loop ??= this.connectLoop();
    return new Promise((resolve) => {
      if (this.stateValue === "ready" || this.stateValue === "failed" || this.stateValue === "closed") return resolve();
      const done = (): void => {
        if (this.stateValue === "ready" || this.stateValue === "failed" || this.stateValue === "closed") {
          this.off("state", done);
          resolve();
        }
      };
      this.on("state", done);
    });
  }

  /** Call one of this server's tools (its own name). Throws McpError for timeouts, crashes and an unavailable server. */
  async callTool(tool: string, args: Record<string, unknown>, opts: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<CallToolResult> {
    const started = performance.now();
    const client = await this.whenReady(opts.timeoutMs, opts.signal);
    const left = Math.max(1, opts.timeoutMs - (performance.now() - started));
    try {
      return (await client.callTool({ name: tool, arguments: args }, undefined, requestOptions(left, opts.signal))) as CallToolResult;
    } catch (err) {
      throw this.sessionLost(client, err, `${this.name}__${tool}`) ?? this.explain(err, `${this.name}__${tool}`, opts.timeoutMs, opts.signal);
    }
  }

  /** Forwarded read-only requests (resources, prompts) with the same error mapping. */
  async request<T>(what: string, timeoutMs: number, fn: (client: Client, options: RequestOptions) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const client = await this.whenReady(timeoutMs, signal);
    try {
      return await fn(client, requestOptions(timeoutMs, signal));
    } catch (err) {
      throw this.sessionLost(client, err, what) ?? this.explain(err, what, timeoutMs, signal);
    }
  }

  /** The live client's server capabilities (undefined until ready). */
  capabilities(): ReturnType<Client["getServerCapabilities"]> {
    return this.client?.getServerCapabilities();
  }

  async close(): Promise<void> {
    if (this.stateValue === "closed") return;
    this.stop.abort();
    this.setState("closed");
    await this.teardown();
    await this.loop?.catch(() => undefined);
  }

  private async connectLoop(): Promise<void> {
    for (let attempt = 0; !this.stop.signal.aborted; attempt++) {
      try {
        await this.connectOnce();
        return;
      } catch (err) {
        await this.teardown();
        this.lastError = (err as Error).message;
        if (this.stop.signal.aborted) return;
        const fallback = this.factory.fallback?.(err);
        if (fallback && attempt === 0) {
          this.factory = fallback;
          attempt = -1;
          continue;
        }
        if (!isRetryable(err) || attempt >= this.opts.reconnect.attempts) {
          this.setState("failed");
          return;
        }
        if (!(await sleep(backoffDelay(attempt, this.opts.reconnect), this.stop.signal))) return;
      }
    }
  }

  private async connectOnce(): Promise<void> {
    const timeout = AbortSignal.timeout(this.opts.connectTimeoutMs);
    const signal = AbortSignal.any([timeout, this.stop.signal]);
    const endpoint = await this.factory.open(signal);
    this.endpoint = endpoint;
    const client = new Client(CLIENT_INFO, { capabilities: { sampling: {}, elicitation: { form: {} } } });
    this.client = client;
    refuseServerRequests(client, this.name);
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => this.refreshTools(client));
    client.onclose = () => this.onLost(client);
    try {
      await client.connect(endpoint.transport, { timeout: this.opts.connectTimeoutMs, signal });
      this.toolList = client.getServerCapabilities()?.tools ? await this.listAllTools(client, { timeout: this.opts.connectTimeoutMs, signal }) : [];
    } catch (err) {
      throw this.startError(err, endpoint.describeEnd());
    }
    this.setState("ready");
    this.emit("tools-changed");
  }

  /**
   * Every page of the server's tools, each definition checked on its own: one tool
   * with a broken schema leaves that tool out (named in lastError) instead of
   * failing the whole list, as the SDK's listTools would.
   */
  private async listAllTools(client: Client, options: RequestOptions): Promise<Tool[]> {
    const tools: Tool[] = [];
    const skipped: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_TOOL_PAGES; page++) {
      const res = await client.request({ method: "tools/list", params: cursor ? { cursor } : {} }, LenientToolList, options);
      for (const raw of res.tools) {
        const parsed = ToolSchema.safeParse(raw);
        if (parsed.success) tools.push(parsed.data);
        else skipped.push(typeof (raw as { name?: unknown })?.name === "string" ? String((raw as { name: string }).name).slice(0, 64) : "(unnamed)");
      }
      cursor = res.nextCursor;
      if (!cursor) break;
    }
    this.lastError = skipped.length > 0 ? `left out ${skipped.length} tool(s) with invalid definitions: ${skipped.slice(0, 5).join(", ")}${skipped.length > 5 ? ", …" : ""}` : undefined;
    return tools;
  }

  private startError(err: unknown, why: string | undefined): McpError {
    if (err instanceof McpError && err.code !== "E_MCP_CONNECT") return err;
    const status = httpStatusOf(err);
    if (status === 401 || status === 403) {
      return new McpError("E_MCP_AUTH", `MCP server '${this.name}' refused our credentials (HTTP ${status}); not retrying. Set the right token in mcp.servers.${this.name}.headers.`, { cause: err });
    }
    const hint = this.factory.kind === "stdio" ? "Check its command and arguments" : "Check its url and that it is running";
    return new McpError("E_MCP_CONNECT", `MCP server '${this.name}' (${this.factory.where}) did not start: ${why ?? (err as Error).message}. ${hint} in mcp.servers.${this.name}.`, { cause: err });
  }

  private async refreshTools(client: Client): Promise<void> {
    if (client !== this.client || this.stateValue !== "ready") return;
    try {
      this.toolList = await this.listAllTools(client, { timeout: this.opts.connectTimeoutMs });
      this.emit("tools-changed");
    } catch (err) {
      this.lastError = `refreshing the tool list failed: ${(err as Error).message}`;
    }
  }

  /** The server's connection ended without us closing it: restart it on a fresh endpoint. */
  private onLost(client: Client): void {
    if (client !== this.client || this.stateValue === "closed") return;
    const wasReady = this.stateValue === "ready";
    this.lastError = `the server stopped: ${this.endpoint?.describeEnd() ?? "its connection closed"}`;
    this.client = undefined;
    if (!wasReady) return; // connectOnce's own error path handles a death during start.
    this.restarts++;
    this.previousTools = this.toolList;
    this.toolList = [];
    this.setState("restarting");
    this.emit("tools-changed");
    void this.teardown().then(() => {
      if (this.stateValue !== "restarting") return;
      this.loop = this.connectLoop();
    });
  }

  private async teardown(): Promise<void> {
    const client = this.client;
    const endpoint = this.endpoint;
    this.client = undefined;
    this.endpoint = undefined;
    if (client) {
      client.onclose = undefined;
      await client.close().catch(() => undefined);
    }
    await endpoint?.dispose().catch(() => undefined);
  }

  private setState(state: ServerState): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    this.emit("state", state);
    if (state !== "starting" && state !== "restarting") for (const w of this.readyWaiters) w();
  }

  /** Wait until the server is ready (it may be restarting), bounded by the call's own timeout. */
  private async whenReady(timeoutMs: number, signal?: AbortSignal): Promise<Client> {
    if (this.stateValue === "starting" || this.stateValue === "restarting") {
      await new Promise<void>((resolve) => {
        const finish = (): void => {
          clearTimeout(timer);
          this.readyWaiters.delete(finish);
          signal?.removeEventListener("abort", finish);
          resolve();
        };
        const timer = setTimeout(finish, timeoutMs);
        this.readyWaiters.add(finish);
        signal?.addEventListener("abort", finish, { once: true });
      });
    }
    if (this.stateValue === "ready" && this.client) return this.client;
    if (this.stateValue === "closed") throw new McpError("E_MCP_CLOSED", `The MCP hub is shutting down; server '${this.name}' is closed.`);
    throw new McpError(
      "E_MCP_SERVER_UNAVAILABLE",
      `MCP server '${this.name}' is ${this.stateValue === "failed" ? "down and gave up restarting" : "still starting"}${this.lastError ? ` (${this.lastError})` : ""}. Check \`luminaguard mcp list\`; fix its config or restart LuminaGuard.`,
    );
  }

  /**
   * A Streamable HTTP server answers 404 to a request carrying a session id it
   * no longer knows (it restarted, or expired the session, e.g. during a network
   * partition). The HTTP connection never "closes", so onLost would never fire and
   * every later call would fail the same way: the MCP spec says to start a new
   * session, so treat it as a lost connection and reconnect. The failed request is
   * NOT re-sent (a tools/call may not be idempotent); the caller decides.
   */
  private sessionLost(client: Client, err: unknown, what: string): McpError | undefined {
    if (this.factory.kind !== "http") return undefined;
    if (isBrokenConnection(err)) {
      // The request may or may not have reached the server: never re-send it (it may not be idempotent),
      // but start a new session now: a server that restarted would refuse the old one anyway.
      this.onLost(client);
      this.lastError = `the connection broke during ${what}; opening a new session`;
      return new McpError(
        "E_MCP_SERVER_CRASHED",
        `The connection to MCP server '${this.name}' broke during ${what} (${(err as Error).message}${causeCode(err) ? `: ${causeCode(err)}` : ""}); it may or may not have run there and was not re-sent. LuminaGuard is opening a new session; check the server's state before retrying a call that changes things.`,
        { cause: err },
      );
    }
    if (!(err instanceof StreamableHTTPError) || err.code !== 404) return undefined;
    this.onLost(client);
    this.lastError = "the server no longer knows our session (HTTP 404); opening a new one";
    return new McpError(
      "E_MCP_SERVER_CRASHED",
      `MCP server '${this.name}' no longer knows our session (HTTP 404: it restarted or expired it), so it refused ${what} without running it; LuminaGuard is opening a new session. Retry the call.`,
      { cause: err },
    );
  }

  /** Turn the SDK's errors into ours, with what the user can do. */
  private explain(err: unknown, what: string, timeoutMs: number, signal: AbortSignal | undefined): Error {
    if (err instanceof McpError) return err;
    if (signal?.aborted) return new McpError("E_MCP_CANCELLED", `${what} was cancelled by the caller; the server was told to stop.`, { cause: err });
    if (err instanceof SdkMcpError && err.code === ErrorCode.RequestTimeout) {
      return new McpError("E_MCP_TIMEOUT", `${what} did not answer within ${Math.round(timeoutMs / 1000)} s and was cancelled. Raise mcp.callTimeoutSeconds if the tool is just slow.`, { cause: err });
    }
    if (err instanceof SdkMcpError && err.code === ErrorCode.ConnectionClosed) {
      return new McpError("E_MCP_SERVER_CRASHED", `MCP server '${this.name}' stopped during ${what} (${this.lastError ?? "connection closed"}); it is being restarted in a fresh sandbox. Retry the call.`, { cause: err });
    }
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * A sandboxed server must not reach the model or the user around the Approval
 * Cliff, so its sampling requests are refused and its elicitations declined,
 * each with an answer the server can show (rather than "method not found").
 */
function refuseServerRequests(client: Client, name: string): void {
  client.setRequestHandler(CreateMessageRequestSchema, () => {
    throw new SdkMcpError(ErrorCode.InvalidRequest, `LuminaGuard does not let MCP servers ask the model (sampling/createMessage); server '${name}' was refused.`);
  });
  client.setRequestHandler(ElicitRequestSchema, () => ({ action: "decline" as const }));
}

/** A network failure of fetch itself (reset, refused, socket closed), as opposed to an HTTP or MCP error. */
function isBrokenConnection(err: unknown): boolean {
  return err instanceof TypeError && err.message === "fetch failed";
}

function causeCode(err: unknown): string | undefined {
  const code = (err as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === "string" ? code : undefined;
}

function requestOptions(timeoutMs: number, signal?: AbortSignal): RequestOptions {
  return { timeout: timeoutMs, maxTotalTimeout: timeoutMs, ...(signal ? { signal } : {}) };
}
