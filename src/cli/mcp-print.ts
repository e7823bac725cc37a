/**
 * How `mcp list` and `mcp call` print, embedded or on a daemon: one shape for
 * both, so a script reading the output does not care where the hub runs.
 */
import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types.js";
import type { Classification } from "../approval/types.js";
import { OUTCOME_META, type CallOutcome } from "../mcp/hub.js";

/** A server line of `mcp list`: what an embedded hub's status and the daemon's /health both give. */
export interface ListedServer {
  name: string;
  state: string;
  where: string;
  lastError?: string | undefined;
}

/** A tool line of `mcp list` (a HubTool, or a tool the daemon's gateway listed). */
export interface ListedTool {
  name: string;
  server: string;
  /** The server's own definition. */
  definition: Tool;
  classification: Classification;
}

/** A tool as `mcp list --json` prints it. */
export function toolJson(t: ListedTool): Record<string, unknown> {
  return { name: t.name, server: t.server, description: t.definition.description ?? null, annotations: t.definition.annotations ?? null, classification: t.classification };
}

/** `mcp list` as text: each server with its tools and their verdict, risk and reason. */
export function printList(servers: ListedServer[], tools: ListedTool[]): void {
  if (servers.length === 0) {
    process.stdout.write("No MCP servers configured. Add them under mcp.servers in the config (see docs/mcp.md).\n");
    return;
  }
  for (const s of servers) {
    process.stdout.write(`${s.name}  ${s.state}  ${s.where}${s.lastError ? `\n    ${s.lastError}` : ""}\n`);
    for (const t of tools.filter((x) => x.server === s.name)) {
      const c = t.classification;
      process.stdout.write(`    ${c.verdict === "red" ? "RED  " : "green"}  ${t.name}  (${c.risk}: ${c.reason})\n`);
    }
  }
}

/** A tool's result: its text on stdout (or the whole result with --json), a denial said on stderr. */
export function printResult(result: CallToolResult, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const outcome = result._meta?.[OUTCOME_META] as CallOutcome | undefined;
  for (const c of result.content ?? []) {
    if (c.type === "text") process.stdout.write(c.text.endsWith("\n") ? c.text : `${c.text}\n`);
    else process.stdout.write(`[${c.type}${"mimeType" in c && c.mimeType ? ` ${c.mimeType}` : ""}]\n`);
  }
  if (result.structuredContent && (result.content ?? []).length === 0) process.stdout.write(`${JSON.stringify(result.structuredContent, null, 2)}\n`);
  if (outcome?.decision === "denied") process.stderr.write(`luminaguard: the call was denied (${outcome.decidedBy ?? "no approver"})\n`);
}
