/**
 * SOCKS5 (RFC 1928) on the proxy's port: CONNECT only, no authentication.
 * It exists because many tools speak it (curl, git, ssh via ProxyCommand);
 * it is cheap because the tunnel code is shared with HTTP CONNECT, including
 * the allow-list, the DNS-rebinding guard and the TLS SNI check.
 *
 * Clients should send names (ATYP 3, "socks5h://" in curl): a client that
 * resolves locally sends an address, and addresses are refused unless the
 * policy lists them. SOCKS has no room for a reason text, so refusals are reply
 * codes (2: "connection not allowed by ruleset"); the log carries the reason.
 */
import type { Socket } from "node:net";
import type { ProxyContext } from "./proxy-context.js";
import { canonicalHost, type CanonicalHost } from "./proxy-match.js";
import { closeWith, openTunnel } from "./proxy-tunnel.js";
import type { Refusal } from "./proxy-types.js";

/** The first byte of a SOCKS5 greeting (the version). */
export const SOCKS5_VERSION = 0x05;
/** A greeting and request that take longer than this are dropped. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** SOCKS5 reply codes. */
export const SocksReply = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

/** A reply with an unspecified bound address (0.0.0.0:0): clients of CONNECT do not use it. */
export function socksReply(code: number): Buffer {
  return Buffer.from([SOCKS5_VERSION, code, 0, 1, 0, 0, 0, 0, 0, 0]);
}

/** The reply code for a refusal or failure. */
export function replyFor(r: Refusal): number {
  if (r.status === 403) return SocksReply.notAllowed;
  if (r.status === 504) return SocksReply.ttlExpired;
  if (r.status === 502) return /refused the connection/.test(r.message) ? SocksReply.connectionRefused : SocksReply.hostUnreachable;
  return SocksReply.generalFailure;
}

/** What the handshake parser found so far. */
export type SocksParse =
  | { status: "incomplete" }
  | { status: "error"; reply?: Buffer; reason: string }
  | { status: "greeting"; used: number; noAuth: boolean }
  | { status: "request"; used: number; target: CanonicalHost; port: number };

/** Parse the greeting (VER NMETHODS METHODS...). */
export function parseGreeting(b: Buffer): SocksParse {
  if (b.length < 2) return { status: "incomplete" };
  if (b[0] !== SOCKS5_VERSION) return { status: "error", reason: `SOCKS version ${b[0]}` };
  const n = b[1]!;
  if (n === 0) return { status: "error", reason: "no authentication methods offered" };
  if (b.length < 2 + n) return { status: "incomplete" };
  return { status: "greeting", used: 2 + n, noAuth: b.subarray(2, 2 + n).includes(0x00) };
}

/** Parse the request (VER CMD RSV ATYP DST.ADDR DST.PORT). */
export function parseRequest(b: Buffer): SocksParse {
  if (b.length < 4) return { status: "incomplete" };
  const fail = (code: number, reason: string): SocksParse => ({ status: "error", reply: socksReply(code), reason });
  if (b[0] !== SOCKS5_VERSION) return fail(SocksReply.generalFailure, `SOCKS version ${b[0]} in the request`);
  if (b[1] !== 0x01) return fail(SocksReply.commandNotSupported, `SOCKS command ${b[1]} (only CONNECT is supported)`);
  let host: string;
  let end: number;
  switch (b[3]) {
    case 0x01:
      end = 4 + 4;
      if (b.length < end + 2) return { status: "incomplete" };
      host = [...b.subarray(4, 8)].join(".");
      break;
    case 0x04: {
      end = 4 + 16;
      if (b.length < end + 2) return { status: "incomplete" };
      const groups: string[] = [];
      for (let i = 4; i < 20; i += 2) groups.push(b.readUInt16BE(i).toString(16));
      host = `[${groups.join(":")}]`;
      break;
    }
    case 0x03: {
      if (b.length < 5) return { status: "incomplete" };
      end = 5 + b[4]!;
      if (b.length < end + 2) return { status: "incomplete" };
      const name = b.subarray(5, end);
      // A name is printable ASCII; anything else could not have come from a real resolver query.
      if (name.length === 0 || name.some((c) => c < 0x21 || c > 0x7e)) return fail(SocksReply.generalFailure, "the host name is not printable ASCII");
      host = name.toString("latin1");
      break;
    }
    default:
      return fail(SocksReply.addressTypeNotSupported, `address type ${b[3]}`);
  }
  const port = b.readUInt16BE(end);
  const target = canonicalHost(host);
  if (!target || port === 0) return fail(SocksReply.generalFailure, `"${host}:${port}" is not a valid destination`);
  return { status: "request", used: end + 2, target, port };
}

/** Run the SOCKS5 handshake on `client` (whose first bytes are `first`), then the shared tunnel. */
export function handleSocks(ctx: ProxyContext, client: Socket, clientAddr: string, first: Buffer): void {
  let buf = first;
  let stage: "greeting" | "request" = "greeting";
  const timer = setTimeout(() => client.destroy(), HANDSHAKE_TIMEOUT_MS);
  const stop = () => {
    clearTimeout(timer);
    client.off("data", onData);
    client.off("close", stop);
  };
  const refuse = (reply: Buffer | undefined, reason: string) => {
    stop();
    ctx.emit({ type: "client-error", client: clientAddr, status: 400, message: `SOCKS5: ${reason}` });
    if (reply) closeWith(client, reply);
    else client.destroy();
  };
  const step = () => {
    if (stage === "greeting") {
      const g = parseGreeting(buf);
      if (g.status === "incomplete") return;
      if (g.status !== "greeting") return refuse(undefined, g.status === "error" ? g.reason : "bad greeting");
      if (!g.noAuth) return refuse(Buffer.from([SOCKS5_VERSION, 0xff]), "the client offers no method without authentication");
      client.write(Buffer.from([SOCKS5_VERSION, 0x00]));
      buf = buf.subarray(g.used);
      stage = "request";
    }
    const r = parseRequest(buf);
    if (r.status === "incomplete") {
      // Greeting and request together are at most 2+255 and 4+1+255+2 bytes: more means garbage.
      if (buf.length > 262) refuse(socksReply(SocksReply.generalFailure), "request too long");
      return;
    }
    if (r.status !== "request") return refuse(r.status === "error" ? r.reply : undefined, r.status === "error" ? r.reason : "bad request");
    stop();
    openTunnel(ctx, {
      client,
      clientAddr,
      protocol: "socks5",
      target: r.target,
      port: r.port,
      head: buf.subarray(r.used),
      accept: () => client.write(socksReply(SocksReply.succeeded)),
      refuse: (refusal) => closeWith(client, socksReply(replyFor(refusal))),
    }).catch((err: unknown) => {
      ctx.emit({ type: "client-error", client: clientAddr, status: 502, message: `internal error: ${String(err)}` });
      client.destroy();
    });
  };
  const onData = (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    step();
  };
  client.on("data", onData);
  client.once("close", stop);
  step();
}
