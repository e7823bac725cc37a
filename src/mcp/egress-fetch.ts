/**
 * The fetch a remote (HTTP) MCP server is reached with: every request's host
 * and port must be in that server's allow-list, matched by the same compiler
 * and matcher the egress proxy uses for sandboxes. Redirects are not followed
 * blindly: each hop is checked like the first.
 */
import type { FetchLike } from "@modelcontextprotocol/sdk/shared/transport.js";
import { canonicalHost, compileAllowList, matchTarget } from "../policy/firewall/proxy-match.js";
import { McpError } from "./errors.js";

const MAX_REDIRECTS = 5;

/** One server's egress rule, compiled once (every request, redirect hops included, is checked against it). */
export interface EgressGuard {
  /** Throws E_MCP_EGRESS_DENIED unless `url` is allowed; returns nothing when it is. */
  check(url: URL): void;
  /** A fetch that refuses anything outside the allow-list (including redirect targets). */
  fetch: FetchLike;
}

export function egressGuard(server: string, allow: readonly string[], base: FetchLike = fetch): EgressGuard {
  const list = compileAllowList(allow);
  const check = (url: URL): void => {
    if (list.invalid.length > 0) {
      throw new McpError("E_MCP_EGRESS_DENIED", `mcp.servers.${server}.allow has entries that are not host, host:port or *.domain: ${list.invalid.join(", ")}.`);
    }
    const target = canonicalHost(url.hostname);
    const port = url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
    const verdict = target ? matchTarget(list, target, port) : undefined;
    if (!verdict?.allowed) {
      throw new McpError(
        "E_MCP_EGRESS_DENIED",
        `MCP server '${server}': ${url.host} is not in its egress allow-list, so LuminaGuard did not connect. Add "${url.port === "" ? url.hostname : url.host}" to mcp.servers.${server}.allow if you trust it.`,
        { details: { url: url.origin } },
      );
    }
  };
  return {
    check,
    fetch: async (input, init) => {
      let url = new URL(input);
      for (let hop = 0; ; hop++) {
        check(url);
        const res = await base(url, { ...init, redirect: "manual" });
        const location = res.status >= 300 && res.status < 400 ? res.headers.get("location") : null;
        if (location === null) return res;
        if (hop >= MAX_REDIRECTS) throw new McpError("E_MCP_CONNECT", `MCP server '${server}' redirected more than ${MAX_REDIRECTS} times.`);
        url = new URL(location, url);
      }
    },
  };
}
