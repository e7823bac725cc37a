/**
 * Plain HTTP through the egress proxy: "GET http://host/path HTTP/1.1" from the
 * sandbox, forwarded to host with hop-by-hop headers removed, Host rewritten
 * to the checked authority, and both bodies streamed with backpressure.
 *
 * The request target is kept as the client wrote it (not re-serialized
 * through URL, which would normalize "/a/../b" and percent-encoding behind the
 * client's back); only the authority is parsed, with the same canonical form
 * the policy checks and the dialer connects to.
 */
import { request, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { admit } from "./proxy-admit.js";
import type { ProxyContext } from "./proxy-context.js";
import { failure, refusalHeaders } from "./proxy-decide.js";
import { requestHeaders, responseHeaders } from "./proxy-headers.js";
import { canonicalHost, splitHostPort, type CanonicalHost } from "./proxy-match.js";
import type { Refusal } from "./proxy-types.js";

/** Answer `res` with a refusal (text body, X-LuminaGuard-Denied for policy refusals) and close the connection. */
export function sendRefusal(res: ServerResponse, r: Refusal): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${r.message}\n`;
  res.shouldKeepAlive = false;
  res.writeHead(r.status, { ...refusalHeaders(r), "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

/** The parts of an absolute-form request target, or a refusal explaining what is wrong. */
export function parseProxyTarget(url: string): { target: CanonicalHost; port: number; authority: string; path: string } | Refusal {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)([^#]*)/i.exec(url);
  if (!m) {
    return failure(400, `this is an egress proxy: send the full URL ("GET http://host/path") or use CONNECT host:port, not "${url.slice(0, 100)}"`);
  }
  const scheme = m[1]!.toLowerCase();
  if (scheme !== "http") {
    return failure(400, scheme === "https" ? "send https:// requests through CONNECT (an HTTPS proxy client does this)" : `the "${scheme}" scheme is not proxied; only http:// and CONNECT are`);
  }
  // Credentials in the URL are the client's business with the far end; they are not part of the host.
  const authority = m[2]!.slice(m[2]!.lastIndexOf("@") + 1);
  const split = splitHostPort(authority);
  const target = split && canonicalHost(split.host);
  if (!split || !target) return failure(400, `"${authority.slice(0, 100)}" is not a valid host[:port]`);
  const port = split.port ?? 80;
  const rest = m[3]!;
  const path = rest === "" ? "/" : rest.startsWith("/") ? rest : `/${rest}`;
  const host = target.kind === "ipv6" ? `[${target.host}]` : target.host;
  return { target, port, authority: port === 80 ? host : `${host}:${port}`, path };
}

/** Handle one plain-HTTP proxy request. */
export async function handleHttp(ctx: ProxyContext, clientAddr: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const parsed = parseProxyTarget(req.url ?? "");
  if ("status" in parsed) {
    ctx.emit({ type: "client-error", client: clientAddr, status: parsed.status, message: parsed.message });
    sendRefusal(res, parsed);
    req.resume();
    return;
  }
  const client = req.socket as Socket;
  const admitted = await admit(ctx, {
    client,
    clientAddr,
    protocol: "http",
    target: parsed.target,
    port: parsed.port,
    refuse: (r) => {
      sendRefusal(res, r);
      // An unread request body must not be parsed as the next request: the connection closes after the answer.
      req.resume();
    },
  });
  if (!admitted) return;
  const { upstream, outcome, verdict } = admitted;
  outcome.settle(verdict.decision, verdict.reason, verdict.detail === undefined ? {} : { detail: verdict.detail });

  const upReq = request({
    method: req.method,
    path: parsed.path,
    headers: requestHeaders(req.rawHeaders, parsed.authority),
    createConnection: () => upstream,
  });
  upstream.setTimeout(ctx.idleTimeoutMs, () => {
    if (!res.headersSent) {
      outcome.upstreamError(failure(504, "timeout"));
      sendRefusal(res, failure(504, `"${parsed.authority}" sent no response within ${ctx.idleTimeoutMs} ms`));
    }
    upReq.destroy();
    res.destroy();
  });
  upReq.on("response", (upRes: IncomingMessage) => {
    res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, responseHeaders(upRes.rawHeaders));
    upRes.pipe(res);
    upRes.on("error", () => res.destroy());
    // The upstream closed before the end of its body: the client must see a cut, not a short success.
    upRes.on("close", () => {
      if (!upRes.complete) res.destroy();
    });
  });
  upReq.on("error", (err: NodeJS.ErrnoException) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const r = failure(502, `"${parsed.authority}" failed before answering (${err.code ?? err.message})`);
    outcome.upstreamError(r);
    sendRefusal(res, r);
  });
  // The sandbox hung up early: stop the upstream request too.
  res.on("close", () => {
    if (!res.writableFinished) upReq.destroy();
  });
  req.pipe(upReq);
}
