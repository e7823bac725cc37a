/**
 * One live link to an MCP server: the SDK transport plus what the hub needs
 * around it (where to read current file contents for Diff Cards, why it ended,
 * how to free it). A connection opens a fresh endpoint for every (re)start.
 */
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { ContentReader } from "../approval/reader.js";

export interface ServerEndpoint {
  transport: Transport;
  /** Reads files where the server sees them (inside its sandbox); undefined for remote servers. */
  reader: ContentReader | undefined;
  /** Why the endpoint ended when we did not close it (exit code, stderr tail), if known. */
  describeEnd(): string | undefined;
  /** Free everything the endpoint holds (its sandbox). Safe to call twice. */
  dispose(): Promise<void>;
}

export interface EndpointFactory {
  readonly kind: "stdio" | "http";
  /** Where the server is, for messages ("node server.js in a namespace sandbox", "http://..."). */
  readonly where: string;
  open(signal: AbortSignal): Promise<ServerEndpoint>;
  /** After a failed initialize over this endpoint: another transport to try (HTTP+SSE after Streamable HTTP), if any. */
  fallback?(err: unknown): EndpointFactory | undefined;
}
