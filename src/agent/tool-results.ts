/** MCP tool results as the model reads them (text), and as a one-line summary for the live display. */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { OUTCOME_META } from "../mcp/hub.js";
import type { ToolOutcome } from "./types.js";

/** The text the model gets for a result: its text parts, with other kinds of content named. */
export function resultText(r: CallToolResult): string {
  const parts: string[] = [];
  for (const c of r.content ?? []) {
    if (c.type === "text") parts.push(c.text);
    else if (c.type === "resource") parts.push("text" in c.resource && typeof c.resource.text === "string" ? c.resource.text : `[resource ${c.resource.uri}]`);
    else if (c.type === "resource_link") parts.push(`[resource ${c.uri}]`);
    else parts.push(`[${c.type}${"mimeType" in c && c.mimeType ? ` ${c.mimeType}` : ""}]`);
  }
  if (parts.length === 0 && r.structuredContent) parts.push(JSON.stringify(r.structuredContent));
  const text = parts.join("\n");
  return text || (r.isError ? "the tool failed without saying why" : "(no output)");
}

/** What the hub attached to a result, if anything. */
export function resultOutcome(r: CallToolResult): ToolOutcome | null {
  const o = r._meta?.[OUTCOME_META] as ToolOutcome | undefined;
  return o && typeof o === "object" ? o : null;
}

/** First line of a text, cut to `max` characters. */
export function summarize(text: string, max = 120): string {
  const first = text.trim().split("\n")[0] ?? "";
  const lines = text.trim().split("\n").length;
  const cut = first.length > max ? `${first.slice(0, max - 1)}…` : first;
  return lines > 1 ? `${cut} (+${lines - 1} lines)` : cut;
}
