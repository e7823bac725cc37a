/** `luminaguard mcp`: serve the hub to MCP clients, list servers and tools, call one tool. */
import { Command, Option } from "commander";
import { createReadStream, createWriteStream, openSync, closeSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { UsageError } from "../errors.js";
import { chooseApprover, type ApproverContext } from "../approval/choose.js";
import { openHub, type OpenHub } from "../mcp/open-hub.js";
import { splitHubToolName } from "../mcp/tool-names.js";
import type { ServerStatus } from "../mcp/connection.js";
import type { DaemonClient } from "../daemon/client.js";
import { requireDaemon, runningDaemon } from "./daemon-link.js";
import { EXIT } from "./output.js";
import { printList, printResult, toolJson } from "./mcp-print.js";

interface Common {
  config?: string;
}

/** `mcp list/call` flags about the daemon. */
interface DaemonFlags {
  embedded?: boolean;
  socket?: string;
}

/** The `mcp` command and its subcommands. */
export function mcpCommand(): Command {
  const cmd = new Command("mcp").description("Run the MCP hub: MCP servers from the config in sandboxes, every tool call through the Approval Cliff.");
  const configOption = (): Option => new Option("--config <file>", "config file (default ~/.config/luminaguard/config.json)");
  const embeddedOption = (): Option => new Option("--embedded", "start the servers in this process even when a daemon is running");
  const socketOption = (): Option => new Option("--socket <path>", "the daemon's Unix socket (default: daemon.socket from the config, else the runtime dir's)");

  cmd
    .command("serve")
    .description("Serve the hub as one MCP server to any MCP client (Claude Desktop, Cursor, an SDK client).")
    .option("--stdio", "speak MCP on stdin/stdout (what desktop clients launch)")
    .option("--http <port>", "serve Streamable HTTP on 127.0.0.1:<port> at /mcp (0 picks a free port)")
    .option("--host <address>", "address to listen on with --http (loopback only is the safe default)", "127.0.0.1")
    .addOption(configOption())
    .addHelpText(
      "after",
      `
Red calls are approved in the client itself when it supports MCP elicitation;
otherwise on this terminal (/dev/tty), otherwise by approval.policy (deny by default).

Examples:
  luminaguard mcp serve --stdio
  luminaguard mcp serve --http 8931`,
    )
    .action(async (flags: Common & { stdio?: boolean; http?: string; host: string }) => {
      if (!!flags.stdio === (flags.http !== undefined)) throw new UsageError("Choose one of --stdio or --http <port>.");
      const port = flags.http === undefined ? undefined : parsePort(flags.http);
      const config = loadConfig(flags.config);
      const terminal = devTty();
      const opened = start(config, { terminal }, undefined);
      await opened.hub.start();
      reportServers(opened.hub.status());
      const stop = await (port === undefined ? serveStdio(opened, config) : serveHttp(opened, config, port, flags.host));
      await waitForShutdown(stop);
      await opened.close();
      terminal?.close();
    });

  cmd
    .command("list")
    .description("Start every configured server, then show its state and its tools with their classification.")
    .option("--json", "print as JSON")
    .addOption(configOption())
    .addOption(embeddedOption())
    .addOption(socketOption())
    .addHelpText("after", "\nWith a daemon running, lists the servers and tools of the daemon's hub (nothing starts here); --embedded starts them here.")
    .action(async (flags: Common & DaemonFlags & { json?: boolean }) => {
      const config = loadConfig(flags.config);
      const daemon = await daemonFor(config, flags);
      if (daemon) {
        const { listOnDaemon } = await import("./mcp-daemon.js");
        return listOnDaemon(daemon, !!flags.json);
      }
      const opened = start(config, {}, undefined, false);
      try {
        await opened.hub.start();
        const servers = opened.hub.status();
        const tools = opened.hub.tools();
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ servers, tools: tools.map(toolJson) }, null, 2)}\n`);
          return;
        }
        printList(servers, tools);
      } finally {
        await opened.close();
      }
    });

  cmd
    .command("call")
    .description("Call one tool (server__tool) through the same path as the gateway: sandbox, Approval Cliff, audit.")
    .argument("<tool>", "tool name as `mcp list` shows it, e.g. fs__read_text_file")
    .option("--args <json>", "arguments as a JSON object", "{}")
    .option("--json", "print the whole MCP result as JSON")
    .addOption(configOption())
    .addOption(embeddedOption())
    .addOption(socketOption())
    .addHelpText(
      "after",
      `\nExample:\n  luminaguard mcp call fs__read_text_file --args '{"path":"/workspace/README.md"}'\n\nWith a daemon running, the call goes through the daemon's hub; a red call waits in its approval queue\n(asked here on a terminal, else \`luminaguard approvals approve <id>\` from elsewhere). --embedded runs it here.\n\nExit status: 0 when the tool succeeded, 1 when it failed or the call was denied, 130 when cancelled on a daemon.`,
    )
    .action(async (tool: string, flags: Common & DaemonFlags & { args: string; json?: boolean }) => {
      const args = parseArgs(flags.args);
      const split = splitHubToolName(tool);
      if (!split) throw new UsageError(`Tool names are server__tool (see \`luminaguard mcp list\`); got '${tool}'.`);
      const config = loadConfig(flags.config);
      const tty = process.stdin.isTTY && process.stderr.isTTY ? { input: process.stdin, output: process.stderr, color: !process.env.NO_COLOR } : undefined;
      const daemon = await daemonFor(config, flags);
      if (daemon) {
        const { callOnDaemon } = await import("./mcp-daemon.js");
        try {
          process.exitCode = await callOnDaemon({ client: daemon, config, tool, args, json: !!flags.json, terminal: tty });
        } finally {
          if (tty) process.stdin.pause();
        }
        return;
      }
      if (!(split.server in config.mcp.servers)) throw new UsageError(`No MCP server '${split.server}' in the config (configured: ${Object.keys(config.mcp.servers).join(", ") || "none"}).`);
      const opened = start(config, { terminal: tty }, [split.server]);
      try {
        await opened.hub.start();
        const result = await opened.hub.call(tool, args);
        printResult(result, !!flags.json);
        if (result.isError) process.exitCode = EXIT.failure;
      } finally {
        await opened.close();
        if (tty) process.stdin.pause();
      }
    });
  return cmd;
}

/** The running daemon to use, or undefined to run embedded (no daemon, or --embedded). */
async function daemonFor(config: Config, flags: DaemonFlags): Promise<DaemonClient | undefined> {
  if (flags.embedded) return undefined;
  // An explicit --socket means "that daemon": not finding it is an error, not a reason to start servers here.
  return flags.socket ? requireDaemon(config, flags.socket, "The MCP servers reached with --socket") : runningDaemon(config);
}

function start(config: Config, ctx: ApproverContext, only: string[] | undefined, audit = true): OpenHub {
  return openHub(config, { approver: chooseApprover(config.approval, ctx), only, session: `cli-${randomUUID().slice(0, 8)}`, audit });
}

async function serveStdio(opened: OpenHub, config: Config): Promise<() => Promise<void>> {
  const { StdioServerTransport } = await import("@modelcontextprotocol/sdk/server/stdio.js");
  const { gatewayServer } = await import("../mcp/gateway.js");
  const server = gatewayServer(opened.hub, { approverMode: config.approval.approver });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    // The client closing our stdin is the normal way a desktop client ends us.
    process.stdin.once("end", () => resolve());
  });
  await server.connect(transport);
  process.stderr.write("luminaguard: MCP gateway on stdio\n");
  return async () => {
    await Promise.race([closed, shutdownSignal()]);
    await server.close().catch(() => undefined);
  };
}

async function serveHttp(opened: OpenHub, config: Config, port: number, host: string): Promise<() => Promise<void>> {
  const { serveHttp: listen } = await import("../mcp/gateway-http.js");
  const gw = await listen(opened.hub, { approverMode: config.approval.approver, port, host });
  process.stderr.write(`luminaguard: MCP gateway at ${gw.url} (Ctrl-C stops it)\n`);
  return async () => {
    await shutdownSignal();
    await gw.close();
  };
}

async function waitForShutdown(stop: () => Promise<void>): Promise<void> {
  await stop();
  process.stderr.write("luminaguard: stopping MCP servers and destroying their sandboxes\n");
}

function shutdownSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    };
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
}

/** The controlling terminal, when stdin/stdout carry MCP and a person is still there to ask. */
function devTty(): (NonNullable<ApproverContext["terminal"]> & { close(): void }) | undefined {
  let fd: number;
  try {
    fd = openSync("/dev/tty", "r+");
  } catch {
    return undefined;
  }
  closeSync(fd);
  const input = createReadStream("/dev/tty");
  const output = createWriteStream("/dev/tty");
  return { input, output, color: !process.env.NO_COLOR, close: () => (input.destroy(), output.end()) };
}

function parsePort(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new UsageError(`--http takes a port number 0-65535, not '${text}'.`);
  return n;
}

function parseArgs(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--args is not valid JSON: ${(err as Error).message}. Example: --args '{"path":"/workspace/a.txt"}'`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new UsageError("--args must be a JSON object, like '{\"path\":\"/workspace/a.txt\"}'.");
  return v as Record<string, unknown>;
}

function reportServers(servers: ServerStatus[]): void {
  for (const s of servers) {
    process.stderr.write(`luminaguard: server ${s.name}: ${s.state}${s.state === "ready" ? ` (${s.tools} tools)` : s.lastError ? ` - ${s.lastError}` : ""}\n`);
  }
}
