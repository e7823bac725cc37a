/** The hub's tool names: `server__tool`, split at the first "__" (server names never contain one). */

export const SEPARATOR = "__";

/** MCP's rule for tool names (SEP-986): 1-128 of letters, digits, _ - . */
const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

export function hubToolName(server: string, tool: string): string {
  return `${server}${SEPARATOR}${tool}`;
}

/** Split a hub tool name, or undefined when it has no server part. */
export function splitHubToolName(name: string): { server: string; tool: string } | undefined {
  const at = name.indexOf(SEPARATOR);
  if (at <= 0 || at + SEPARATOR.length >= name.length) return undefined;
  return { server: name.slice(0, at), tool: name.slice(at + SEPARATOR.length) };
}

/** Whether a server's tool can be offered upstream under the hub's name. */
export function validServerToolName(server: string, tool: string): boolean {
  return TOOL_NAME.test(tool) && TOOL_NAME.test(hubToolName(server, tool));
}
