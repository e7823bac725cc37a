/**
 * Header hygiene for requests and responses the egress proxy forwards as
 * plain HTTP. Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection,
 * not the message: forwarding Proxy-Authorization would leak the sandbox's
 * proxy credentials to the far end, and forwarding Connection/Transfer-Encoding
 * would let the two sides disagree about where a message ends (request
 * smuggling). Node frames the forwarded message itself.
 *
 * Headers are kept in raw form ([name, value, name, value, ...], as in
 * `IncomingMessage.rawHeaders`): order, case and repeated headers survive.
 */

/** Headers that never cross the proxy, in lowercase. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Request-only headers dropped as well: Host is rewritten from the request URI
 * (so a Host header cannot name a different virtual host than the one the
 * policy checked), and Expect because the proxy already answered "100 Continue".
 */
const REQUEST_DROPPED: ReadonlySet<string> = new Set(["host", "expect"]);

/** The lowercase names a Connection header lists (its tokens are hop-by-hop too). */
export function connectionTokens(raw: readonly string[]): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== "connection") continue;
    for (const t of raw[i + 1]!.split(",")) {
      const name = t.trim().toLowerCase();
      if (name !== "") tokens.add(name);
    }
  }
  return tokens;
}

/** `raw` without hop-by-hop headers, the headers Connection lists, and `extra` names. */
export function stripHopByHop(raw: readonly string[], extra: ReadonlySet<string> = new Set()): string[] {
  const listed = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || listed.has(name) || extra.has(name)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** The headers to send upstream: hop-by-hop and Host removed, then Host set to `host` (the authority the policy checked). */
export function requestHeaders(raw: readonly string[], host: string): string[] {
  return ["Host", host, ...stripHopByHop(raw, REQUEST_DROPPED)];
}

/** The headers to send back to the sandbox: hop-by-hop removed. */
export function responseHeaders(raw: readonly string[]): string[] {
  return stripHopByHop(raw);
}
