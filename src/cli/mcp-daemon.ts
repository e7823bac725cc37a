/**
 * `mcp list` and `mcp call` when a daemon is running: the daemon's own hub is
 * reached through its MCP gateway (/mcp over the Unix socket, the SDK's
 * Streamable HTTP client), so the servers it already runs answer and nothing
 * starts here. A red call waits in the daemon's approval queue: asked on this
 * terminal (y/n, answered through the API, as `run` does), or, without one,
 * announced with the command that approves it while the call keeps waiting.
 */
import { CardAsker } from "./card-asker.js";
import { randomUUID } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ErrorCode, McpError as SdkMcpError, type CallToolResult, type Tool } from "@modelcontextprotocol/sdk/types.js";
import type { Classification } from "../approval/types.js";
import type { Config } from "../config/schema.js";
import type { DaemonClient, SseEvent } from "../daemon/client.js";
import { DaemonError } from "../daemon/errors.js";
import { socketFetch } from "../daemon/socket-fetch.js";
import { LuminaError, UsageError } from "../errors.js";
import { CLASSIFICATION_META, GATEWAY_INFO, SESSION_META } from "../mcp/gateway.js";
import { splitHubToolName } from "../mcp/tool-names.js";
import type { AskTerminal } from "./daemon-approvals.js";
import { printList, printResult, toolJson, type ListedServer, type ListedTool } from "./mcp-print.js";
import { EXIT } from "./output.js";

/** Exit status of a call given up with Ctrl-C (the shell's 128 + SIGINT). */
const EXIT_CANCELLED = 130;

/** `mcp list` on the daemon: its servers from GET /health, its tools with their classification from tools/list. */
export async function listOnDaemon(client: DaemonClient, json: boolean): Promise<void> {
  const health = await client.health();
  const servers: ListedServer[] = health.servers.map((s) => ({ name: s.name, state: s.state, where: `${s.where ?? "?"}, in the daemon (${client.socketPath})`, ...(s.lastError ? { lastError: s.lastError } : {}) }));
  const tools = await withGateway(client, async (mcp) => {
    const all: Tool[] = [];
    let cursor: string | undefined;
    // The gateway lists every tool at once today; following cursors keeps this right if it ever pages.
    for (let page = 0; page < 100; page++) {
      const res = await mcp.listTools(cursor === undefined ? undefined : { cursor });
      all.push(...res.tools);
      cursor = res.nextCursor;
      if (!cursor) break;
    }
    return all.map(listedTool);
  });
  if (json) {
    process.stdout.write(`${JSON.stringify({ servers, tools: tools.map(toolJson) }, null, 2)}\n`);
    return;
  }
  printList(servers, tools);
}

/** What `mcp call` on the daemon needs. */
export interface DaemonCallOptions {
  client: DaemonClient;
  config: Config;
  tool: string;
  args: Record<string, unknown>;
  json: boolean;
  /** Where to ask approvals; undefined prints how to approve elsewhere. */
  terminal: AskTerminal | undefined;
}

/** `mcp call` on the daemon; resolves with the exit code (0 ok, 1 tool error or denied, 130 cancelled). */
export async function callOnDaemon(o: DaemonCallOptions): Promise<number> {
  const split = splitHubToolName(o.tool);
  const health = await o.client.health();
  if (split && !health.servers.some((s) => s.name === split.server)) {
    throw new UsageError(`The daemon on ${o.client.socketPath} runs no MCP server '${split.server}' (running: ${health.servers.map((s) => s.name).join(", ") || "none"}).`);
  }
  // Our own session id: the gateway files our red card under it, so we ask about ours and no one else's.
  const session = `cli-${randomUUID().slice(0, 8)}`;
  const stop = new AbortController();
  const asker = new CardAsker({ client: o.client, terminal: o.terminal, tcp: o.config.daemon.tcp, session, command: "`luminaguard mcp call`", err: process.stderr });
  let opened!: () => void;
  const open = new Promise<void>((resolve) => (opened = resolve));
  const onEvent = (e: SseEvent): void => {
    if (e.data.session !== session) return;
    if (e.type === "approval.added") asker.added(String(e.data.id));
    else if (e.type === "approval.decided") asker.decided(String(e.data.id), e.data.decision as { approved?: boolean; by?: string } | undefined);
  };
  // Listen before calling: a card queued before the stream opened would never be asked.
  const streaming = o.client.stream("/v1/events?types=approval.*", onEvent, stop.signal, { onOpen: opened });
  const streamEnded = streaming.then(() => {
    throw new DaemonError("E_DAEMON_STREAM_CLOSED", "The daemon's event stream ended before the call finished.");
  });
  streamEnded.catch(() => undefined);
  const cancel = new AbortController();
  const onSigint = (): void => {
    if (cancel.signal.aborted) process.exit(EXIT_CANCELLED);
    process.stderr.write(`\nluminaguard: cancelling ${o.tool} on the daemon (Ctrl-C again to stop at once)\n`);
    asker.stop();
    cancel.abort();
  };
  process.on("SIGINT", onSigint);
  try {
    await Promise.race([open, streamEnded]);
    const result = await withGateway(o.client, (mcp) =>
      mcp.callTool({ name: o.tool, arguments: o.args, _meta: { [SESSION_META]: session } }, undefined, {
        signal: cancel.signal,
        // A red call waits for a person (approval.timeoutSeconds) and then runs (mcp.callTimeoutSeconds); the daemon ends both.
        timeout: (o.config.approval.timeoutSeconds + o.config.mcp.callTimeoutSeconds + 30) * 1000,
      }),
    ).catch((err: unknown) => {
      if (cancel.signal.aborted) return undefined;
      throw err;
    });
    asker.stop();
    if (!result) {
      process.stderr.write("luminaguard: cancelled\n");
      return EXIT_CANCELLED;
    }
    printResult(result as CallToolResult, o.json);
    return result.isError ? EXIT.failure : EXIT.ok;
  } finally {
    process.off("SIGINT", onSigint);
    asker.stop();
    stop.abort();
    await streaming.catch(() => undefined);
  }
}

/** Run `use` with an MCP client connected to the daemon's gateway; the session is ended after. */
async function withGateway<T>(client: DaemonClient, use: (mcp: Client) => Promise<T>): Promise<T> {
  const transport = new StreamableHTTPClientTransport(new URL("http://luminaguard/mcp"), { fetch: socketFetch(client.socketPath) });
  const mcp = new Client({ name: `${GATEWAY_INFO.name}-cli`, version: GATEWAY_INFO.version });
  try {
    await mcp.connect(transport);
    return await use(mcp);
  } catch (err) {
    throw fromProtocol(err);
  } finally {
    // Ending the session lets the daemon drop its gateway Server now rather than keep it open.
    await transport.terminateSession().catch(() => undefined);
    await mcp.close().catch(() => undefined);
  }
}

/** The gateway sends our errors as "E_CODE: message"; give them back their code so exit codes match embedded. */
function fromProtocol(err: unknown): unknown {
  if (!(err instanceof SdkMcpError)) return err;
  const m = /^(?:MCP error -?\d+: )?(E_[A-Z0-9_]+): ([\s\S]*)$/.exec(err.message);
  if (m) return new LuminaError(m[1]!, m[2]!, { cause: err });
  if (err.code === ErrorCode.RequestTimeout) return new DaemonError("E_DAEMON_TIMEOUT", `The daemon did not finish the call in time: ${err.message}. See \`luminaguard audit list\` for what happened.`, { cause: err });
  return new DaemonError("E_DAEMON_MCP", `The daemon's MCP gateway answered with an error: ${err.message}`, { cause: err });
}

/** A tool from the gateway as `mcp list` shows it: the server's own name back, the gateway's tag dropped. */
function listedTool(t: Tool): ListedTool {
  const split = splitHubToolName(t.name);
  const tagged = (t.description ?? "").startsWith("[needs approval]");
  const meta = t._meta?.[CLASSIFICATION_META] as Classification | undefined;
  // An older daemon has only the tag in the description: the verdict without its rule.
  const classification = meta ?? { verdict: tagged ? "red" : "green", risk: tagged ? "high" : "low", reason: "as the daemon's gateway tags it", rule: "daemon:description" };
  const description = (t.description ?? "").replace(/^\[needs approval\]\s*/, "");
  const { _meta: _ignored, ...rest } = t;
  const definition: Tool = { ...rest, name: split?.tool ?? t.name, ...(description ? { description } : { description: undefined }) };
  return { name: t.name, server: split?.server ?? "", definition, classification };
}

