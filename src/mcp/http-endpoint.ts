/**
 * Endpoints for remote MCP servers: Streamable HTTP first; when the server
 * answers that with a 4xx that means "not here" (an older server), the older
 * HTTP+SSE transport, as the MCP spec's backwards-compatibility section says.
 */
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import type { HttpServerConfig } from "../config/schema.js";
import type { EndpointFactory, ServerEndpoint } from "./endpoint.js";
import { egressGuard } from "./egress-fetch.js";
import { httpStatusOf } from "./backoff.js";

/** Statuses from a Streamable HTTP attempt that suggest the server speaks only HTTP+SSE. */
const TRY_SSE = new Set([400, 404, 405]);

export function httpEndpoints(name: string, cfg: HttpServerConfig): EndpointFactory {
  const url = new URL(cfg.url);
  const guard = egressGuard(name, cfg.allow);
  const fetchFn = guard.fetch;
  const requestInit = { headers: cfg.headers };
  const make = (kind: "streamable-http" | "sse"): EndpointFactory => ({
    kind: "http",
    where: `${url.href} (${kind === "sse" ? "HTTP+SSE" : "Streamable HTTP"})`,
    async open(): Promise<ServerEndpoint> {
      guard.check(url);
      const transport = kind === "sse" ? new SSEClientTransport(url, { fetch: fetchFn, requestInit }) : new StreamableHTTPClientTransport(url, { fetch: fetchFn, requestInit });
      return {
        transport,
        reader: undefined,
        describeEnd: () => undefined,
        dispose: async () => {
          await transport.close().catch(() => undefined);
        },
      };
    },
    fallback(err: unknown): EndpointFactory | undefined {
      if (kind !== "streamable-http" || cfg.transport !== "auto") return undefined;
      const status = httpStatusOf(err);
      return status !== undefined && TRY_SSE.has(status) ? make("sse") : undefined;
    },
  });
  return make(cfg.transport === "sse" ? "sse" : "streamable-http");
}
