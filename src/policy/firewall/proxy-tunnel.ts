/**
 * Tunnels (HTTP CONNECT and SOCKS5): after admission, check the first bytes
 * the sandbox sends, then splice the two sockets with backpressure.
 *
 * The check: when the tunnel carries TLS (always expected on port 443; on other
 * ports whenever the first byte starts a TLS record) the ClientHello's server
 * name must be the name the tunnel was opened for. Otherwise an allowed name
 * could carry a TLS session to any other site behind the same CDN front
 * (domain fronting). A hello without SNI is allowed and logged as "no-sni".
 * On other ports, non-TLS traffic passes (SSH, databases); on 443 it is refused,
 * since a client that opens 443 and does not speak TLS is not a browser or SDK.
 *
 * Bytes from the far end flow at once: protocols where the server speaks first
 * (SSH, SMTP) must not wait for a client byte the gate is waiting for.
 *
 * Once checked, a busy tunnel may move to the kernel relay (proxy-relay.ts).
 */
import type { Socket } from "node:net";
import { admit, type AdmitRequest } from "./proxy-admit.js";
import type { ProxyContext } from "./proxy-context.js";
import { failure, rawRefusal, sniRefusal } from "./proxy-decide.js";
import { canonicalHost, formatAuthority } from "./proxy-match.js";
import { MAX_PEEK_BYTES, parseClientHello } from "./proxy-sni.js";
import type { ProxyDecision, ProxyReason } from "./proxy-types.js";

/** A fatal TLS alert "access_denied" (49): what a TLS client shows when the tunnel is refused after it opened. */
export const TLS_ALERT_ACCESS_DENIED = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49]);

/**
 * Send `last` and close politely: keep reading (and discarding) so the close is a FIN, not a reset
 * that could destroy the answer before the client reads it, and drop the socket after `lingerMs` regardless.
 */
export function closeWith(socket: Socket, last: string | Buffer, lingerMs = 5_000): void {
  socket.end(last);
  socket.resume();
  socket.setTimeout(lingerMs, () => socket.destroy());
}

/** A tunnel request: admission plus how to tell the client it is open. */
export interface TunnelRequest extends AdmitRequest {
  /** Bytes the client already sent after its request (CONNECT's "head"). */
  head: Buffer;
  /** Tell the client the tunnel is open ("200 Connection Established" / SOCKS success). */
  accept(): void;
}

/** Admit, connect and splice a tunnel; resolves once the tunnel is set up or refused (not when it ends). */
export async function openTunnel(ctx: ProxyContext, req: TunnelRequest): Promise<void> {
  const { client } = req;
  // Hold client bytes until the gate has read them; they stay buffered (bounded by the socket's high-water mark).
  client.pause();
  const admitted = await admit(ctx, req);
  if (!admitted) return;
  const { upstream, outcome, policy, verdict } = admitted;

  const teardown = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", teardown);
  upstream.on("error", teardown);
  // A clean end travels through the pipes (half-close); only an abrupt close takes the other side down at once.
  let refusing = false;
  client.on("close", (hadError) => (hadError || !client.readableEnded ? upstream.destroy() : undefined));
  // After a refusal the client gets its last words (a TLS alert, a 403) and closes itself; no cut-off.
  upstream.on("close", (hadError) => (!refusing && (hadError || !upstream.readableEnded) ? client.destroy() : undefined));
  client.setTimeout(ctx.idleTimeoutMs, teardown);
  upstream.setTimeout(ctx.idleTimeoutMs, teardown);
  // Bytes are counted once both sockets are closed: Node's counters plus what a kernel relay moved.
  const relayed = { up: 0, down: 0 };
  let open = 2;
  const closed = () => {
    if (--open === 0) outcome.bytes(upstream.bytesWritten + relayed.up, upstream.bytesRead + relayed.down);
  };
  client.once("close", closed);
  upstream.once("close", closed);

  req.accept();
  upstream.pipe(client);

  const pending = { decision: verdict.decision, reason: verdict.reason };
  const pass = (data: Buffer) => {
    if (data.length > 0) upstream.write(data);
    if (client.readableEnded) upstream.end();
    else {
      client.pipe(upstream);
      ctx.relay({ client, upstream, onRelayed: (b) => Object.assign(relayed, b) });
    }
  };
  if (policy.mode === "disabled") {
    outcome.settle(pending.decision, pending.reason);
    pass(req.head);
    return;
  }

  const enforce = policy.mode === "enforce";
  const flagged: ProxyDecision = enforce ? "deny" : "would-deny";
  const destination = formatAuthority(req.target, req.port);
  const peek = await peekHello(client, req.head, req.port === 443, ctx.tlsPeekTimeoutMs);
  if (client.destroyed) {
    // Reset or destroyed while we waited: nothing to check or forward (teardown closed the upstream).
    outcome.settle(pending.decision, pending.reason);
    return;
  }
  // A gate problem: refuse in enforce mode (with `refuse` as the last words), record and pass in test mode.
  const flag = (reason: ProxyReason, detail: string, refuse: () => void, sni?: string) => {
    outcome.settle(flagged, reason, { detail, ...(sni !== undefined ? { sni } : {}) });
    if (enforce) {
      refusing = true;
      upstream.destroy();
      refuse();
    } else pass(peek.data);
  };
  switch (peek.kind) {
    case "hello": {
      const named = peek.sni === undefined ? undefined : canonicalHost(peek.sni);
      if (peek.sni === undefined) {
        outcome.settle(pending.decision, pending.decision === "allow" ? "no-sni" : pending.reason);
        pass(peek.data);
      } else if (named && named.kind === req.target.kind && named.host === req.target.host) {
        outcome.settle(pending.decision, pending.reason, { sni: peek.sni });
        pass(peek.data);
      } else {
        const r = sniRefusal(destination, peek.sni);
        flag("sni-mismatch", r.message, () => closeWith(client, TLS_ALERT_ACCESS_DENIED), peek.sni);
      }
      return;
    }
    case "invalid":
      flag("bad-tls", `malformed TLS ClientHello: ${peek.reason}`, () => closeWith(client, TLS_ALERT_ACCESS_DENIED));
      return;
    case "timeout":
      flag("tls-timeout", `no complete TLS ClientHello within ${ctx.tlsPeekTimeoutMs} ms`, () => client.destroy());
      return;
    case "other":
      if (req.port !== 443) {
        outcome.settle(pending.decision, pending.reason);
        pass(peek.data);
        return;
      }
      {
        const r = failure(403, `port 443 carries only TLS through this proxy, and "${destination}" was sent something else`);
        // The client may speak plain HTTP on the tunnel: then it can read this answer.
        flag("not-tls", r.message, () => closeWith(client, rawRefusal({ ...r, denied: "not-tls" })));
      }
      return;
    case "closed":
      // Nothing was sent; the half-close still travels to the far end.
      outcome.settle(pending.decision, pending.reason);
      pass(peek.data);
      return;
  }
}

type Peek =
  | { kind: "hello"; sni: string | undefined; data: Buffer }
  | { kind: "other"; data: Buffer }
  | { kind: "invalid"; reason: string; data: Buffer }
  | { kind: "timeout"; data: Buffer }
  | { kind: "closed"; data: Buffer };

/**
 * Read the client's first bytes until they are a full ClientHello, clearly not
 * TLS, broken, too slow, or the client ends. `mustBeTls` starts the clock at
 * once (port 443); otherwise only once a TLS record has begun. Leaves the
 * client paused with nothing consumed but `data`.
 */
function peekHello(client: Socket, head: Buffer, mustBeTls: boolean, timeoutMs: number): Promise<Peek> {
  return new Promise((resolve) => {
    // Chunks are joined only when enough bytes for the parser's next step are in: a client
    // dribbling one byte per segment must not cost a copy of the whole buffer per byte.
    const chunks: Buffer[] = head.length > 0 ? [head] : [];
    let have = head.length;
    let need = 1;
    let timer: NodeJS.Timeout | undefined;
    const joined = () => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, have));
    const finish = (p: Peek) => {
      clearTimeout(timer);
      client.off("data", onData);
      client.off("end", onEnd);
      client.off("close", onEnd);
      client.pause();
      resolve(p);
    };
    const startClock = () => {
      timer ??= setTimeout(() => finish({ kind: "timeout", data: joined() }), timeoutMs);
    };
    /** True once the peek is over. */
    const check = (): boolean => {
      if (have < need) return false;
      const data = joined();
      chunks.splice(0, chunks.length, data);
      const r = parseClientHello(data);
      switch (r.status) {
        case "incomplete":
          need = r.need;
          if (need <= MAX_PEEK_BYTES) {
            startClock();
            return false;
          }
          finish({ kind: "invalid", reason: `ClientHello needs more than ${MAX_PEEK_BYTES} bytes`, data });
          return true;
        case "not-tls":
          finish({ kind: "other", data });
          return true;
        case "invalid":
          finish({ kind: "invalid", reason: r.reason, data });
          return true;
        case "ok":
          finish({ kind: "hello", sni: r.sni, data });
          return true;
      }
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      check();
    };
    const onEnd = () => {
      const data = joined();
      finish(have === 0 ? { kind: "closed", data } : { kind: "invalid", reason: "the client ended before a full ClientHello", data });
    };
    if (check()) return;
    if (mustBeTls) startClock();
    client.on("data", onData);
    client.once("end", onEnd);
    client.once("close", onEnd);
    client.resume();
  });
}
