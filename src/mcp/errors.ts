import { LuminaError } from "../errors.js";

/** Stable codes of the MCP hub's errors. */
export type McpErrorCode =
  | "E_MCP_CONNECT" // could not connect to (or initialize) an MCP server
  | "E_MCP_AUTH" // the server refused our credentials (401/403); not retried
  | "E_MCP_SERVER_CRASHED" // the server's process or connection ended while a call was running
  | "E_MCP_SERVER_UNAVAILABLE" // the server is down and restarting, or gave up after its retries
  | "E_MCP_TIMEOUT" // the server did not answer a call in time
  | "E_MCP_CANCELLED" // the caller cancelled the call (the server was told to stop)
  | "E_MCP_OUTPUT_LIMIT" // a result was larger than mcp.maxOutputBytes
  | "E_MCP_UNKNOWN_TOOL" // no such server__tool in the hub
  | "E_MCP_BAD_ARGS" // the call's arguments are not a JSON object
  | "E_MCP_EGRESS_DENIED" // an HTTP server's address is not in its allow-list
  | "E_MCP_CLOSED"; // the hub was shut down

/** An error from the MCP hub, its connections or its gateway. */
export class McpError extends LuminaError {
  declare readonly code: McpErrorCode;

  constructor(code: McpErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(code, message, options);
  }
}
