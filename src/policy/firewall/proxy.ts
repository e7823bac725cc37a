/**
 * The host-side egress proxy. A sandbox with a domain allow-list can reach
 * nothing directly: nftables lets it talk only to this proxy, which decides by
 * NAME (CONNECT authority, absolute URI, TLS SNI), resolves the name itself
 * and connects. The rules are documented where they live: proxy-match.ts
 * (names, wildcards, ports), proxy-dial.ts (blocked addresses), proxy-tunnel.ts
 * (TLS SNI), proxy-decide.ts (modes and refusal texts).
 *
 * Each sandbox has its own source address, so the policy is looked up by the
 * connecting client's IP for every request: setPolicy takes effect at once for
 * new requests, while an open tunnel keeps the verdict it got.
 *
 * Node's http server does the HTTP parsing (header-size limit, request
 * framing); it never listens itself. Plain net servers accept, count
 * connections per client, and look at the first byte: SOCKS5 greetings go to
 * proxy-socks.ts, everything else to the http server. The count must be known
 * before any byte is parsed, and one port for both protocols keeps the
 * firewall rule (sandbox may reach proxy:port, nothing else) a single one.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import type { BlockList, Socket } from "node:net";
import { FirewallError } from "./errors.js";
import type { ProxyContext, WithoutTime } from "./proxy-context.js";
import { compilePolicy, failure, rawRefusal, type CompiledPolicy } from "./proxy-decide.js";
import { compileBlockList, DEFAULT_BLOCKED_TARGETS, systemResolve, unmapV4 } from "./proxy-dial.js";
import { handleHttp, sendRefusal } from "./proxy-http.js";
import { Listeners } from "./proxy-listeners.js";
import { canonicalHost, splitHostPort } from "./proxy-match.js";
import { Relays } from "./proxy-relay.js";
import { ProxyStats, type ProxyBytes, type ProxyCounts } from "./proxy-stats.js";
import { handleSocks, SOCKS5_VERSION } from "./proxy-socks.js";
import { closeWith, openTunnel } from "./proxy-tunnel.js";
import type { EgressProxyOptions, ProxyEvent, ProxyPolicy } from "./proxy-types.js";

export { DEFAULT_BLOCKED_TARGETS } from "./proxy-dial.js";
export type { EgressProxyOptions, ProxyEvent, ProxyPolicy, ProxyMode, ProxyDecision, ProxyReason } from "./proxy-types.js";
export type { ProxyBytes, ProxyCounts } from "./proxy-stats.js";
export type { RelayOptions } from "./proxy-relay.js";

const DEFAULTS = {
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  tlsPeekTimeoutMs: 10_000,
  maxConnectionsPerClient: 128,
  maxHeaderBytes: 16_384,
};
/** A slow client gets this long to send a complete request head. */
const HEADERS_TIMEOUT_MS = 30_000;
/** Connections refused over the per-client limit are dropped this long after their 429, read or not. */
const LINGER_MS = 2_000;

/** The key of a client address: IPv4-mapped IPv6 as plain IPv4, IPv6 compressed and lowercase. */
export function clientKey(address: string): string {
  const raw = unmapV4(address.trim());
  const c = canonicalHost(raw);
  if (!c || c.kind === "name") return raw.toLowerCase();
  // URL parsing writes a mapped address in hex ("::ffff:a00:1"); the socket reports "::ffff:10.0.0.1".
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(c.host);
  if (!m) return c.host;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** An HTTP CONNECT / plain-HTTP forward proxy that enforces per-sandbox domain allow-lists. */
export class EgressProxy {
  private readonly opts: Required<Omit<EgressProxyOptions, "log" | "blockedTargets" | "relay">> & Pick<EgressProxyOptions, "log">;
  private readonly blocked: BlockList;
  private readonly policies = new Map<string, CompiledPolicy>();
  private readonly counters = new ProxyStats();
  private readonly relays: Relays;
  private readonly http: HttpServer;
  private readonly listeners: Listeners;
  /** Every open socket, client or upstream, so close() leaves nothing behind. */
  private readonly sockets = new Set<Socket>();
  private readonly perClient = new Map<string, number>();
  private state: "new" | "starting" | "running" | "closed" = "new";
  private starting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly ctx: ProxyContext;

  constructor(options: EgressProxyOptions) {
    for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
      const v = options[key];
      if (v !== undefined && (!Number.isInteger(v) || v <= 0)) {
        throw new FirewallError("E_FIREWALL_PROXY", `egress proxy option ${key} must be a positive whole number, not ${String(v)}`);
      }
    }
    const { relay, ...rest } = options;
    this.opts = { ...DEFAULTS, resolve: systemResolve, ...stripUndefined(rest), listen: [...options.listen] };
    this.blocked = compileBlockList(options.blockedTargets ?? DEFAULT_BLOCKED_TARGETS);
    this.http = createHttpServer({
      maxHeaderSize: this.opts.maxHeaderBytes,
      // The whole request may be a long upload: only the head is timed; stalls are caught by idle timeouts.
      requestTimeout: 0,
      headersTimeout: HEADERS_TIMEOUT_MS,
      connectionsCheckingInterval: 1_000,
      keepAliveTimeout: 5_000,
    });
    this.http.on("request", (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    this.http.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) => this.onConnect(req, socket, head));
    this.http.on("upgrade", (_req: IncomingMessage, socket: Socket) => {
      const r = failure(501, "protocol upgrades (WebSocket) over plain HTTP are not proxied; use CONNECT (wss://, or a proxy-aware client)");
      this.emit({ type: "client-error", client: clientKey(socket.remoteAddress ?? ""), status: r.status, message: r.message });
      closeWith(socket, rawRefusal(r));
    });
    this.http.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket));
    this.listeners = new Listeners(
      (socket) => this.onConnection(socket),
      (where, err) => this.emit({ type: "client-error", client: "", status: 0, message: `listener ${where}: ${err.code ?? err.message}` }),
    );
    for (const key of ["thresholdBytes", "maxRelays"] as const) {
      const v = relay?.[key];
      if (v !== undefined && (!Number.isInteger(v) || v < 0)) {
        throw new FirewallError("E_FIREWALL_PROXY", `egress proxy option relay.${key} must be a whole number >= 0, not ${String(v)}`);
      }
    }
    this.relays = new Relays(relay, this.opts.idleTimeoutMs, (message) => this.emit({ type: "relay", message }));
    this.ctx = {
      policyFor: (client) => this.policies.get(client),
      dialOptions: (signal) => ({ resolve: this.opts.resolve, blocked: this.blocked, connectTimeoutMs: this.opts.connectTimeoutMs, signal }),
      idleTimeoutMs: this.opts.idleTimeoutMs,
      tlsPeekTimeoutMs: this.opts.tlsPeekTimeoutMs,
      emit: (e) => this.emit(e),
      count: (sandboxId, destination, kind) => this.counters.record(sandboxId, destination, kind),
      countBytes: (sandboxId, destination, sent, received) => this.counters.recordBytes(sandboxId, destination, sent, received),
      relay: (tunnel) => this.relays.offer(tunnel),
      track: (socket) => this.track(socket),
    };
  }

  /** Listen on every configured address. Throws E_FIREWALL_PROXY (and listens nowhere) when one fails. */
  start(): Promise<void> {
    if (this.state !== "new") {
      return Promise.reject(new FirewallError("E_FIREWALL_PROXY", `egress proxy is ${this.state === "closed" ? "closed" : "already started"}: create a new EgressProxy`));
    }
    this.state = "starting";
    this.starting = (async () => {
      // The http server never listens, but its head-timeout checker starts on "listening": without it a
      // client could hold a connection forever by sending one header byte at a time.
      this.http.emit("listening");
      try {
        for (const addr of this.opts.listen) await this.listenOn(addr.host, addr.port);
      } catch (err) {
        await this.close();
        throw err;
      }
      // close() may have run meanwhile; it wins.
      if (this.state === "starting") this.state = "running";
    })();
    return this.starting;
  }

  /**
   * Listen on one more address, e.g. the host side of a new sandbox's veth. Before start() it is
   * added to the addresses start() listens on. Already listening there: nothing happens. Throws E_FIREWALL_PROXY.
   */
  async addListener(host: string, port: number): Promise<void> {
    if (this.state === "new") {
      this.opts.listen = [...this.opts.listen, { host, port }];
      return;
    }
    if (this.state === "starting") await this.starting;
    if (this.state === "closed") throw new FirewallError("E_FIREWALL_PROXY", `egress proxy is closed: cannot listen on ${host}:${port}`);
    await this.listenOn(host, port);
  }

  /** Stop listening on host:port and end the connections accepted there (the sandbox behind it is going away). */
  async removeListener(host: string, port: number): Promise<void> {
    if (this.state === "new") {
      this.opts.listen = this.opts.listen.filter((l) => !(l.host === host && l.port === port));
      return;
    }
    await this.listeners.remove(host, port);
  }

  /** Stop listening and destroy every open connection and tunnel. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = "closed";
      const closed = this.listeners.closeAll();
      for (const s of this.sockets) s.destroy();
      this.http.close(() => undefined);
      await closed;
      await this.relays.close();
      this.emit({ type: "closed" });
    })();
    return this.closing;
  }

  /** The addresses the proxy listens on (real ports when 0 was asked). */
  addresses(): { host: string; port: number }[] {
    return this.listeners.addresses();
  }

  /**
   * Set (or with undefined, remove) the policy of the sandbox connecting from `clientAddress`.
   * Applies to every request that starts afterwards. Throws E_FIREWALL_INVALID_RULE for a bad address, mode or domain.
   */
  setPolicy(clientAddress: string, policy: ProxyPolicy | undefined): void {
    const c = canonicalHost(clientAddress);
    if (!c || c.kind === "name") throw new FirewallError("E_FIREWALL_INVALID_RULE", `egress proxy: client "${clientAddress}" is not an IP address (policies are keyed by the sandbox's source address)`);
    const key = clientKey(clientAddress);
    if (policy === undefined) {
      this.policies.delete(key);
      return;
    }
    if (!["enforce", "test", "disabled"].includes(policy.mode)) {
      throw new FirewallError("E_FIREWALL_INVALID_RULE", `egress proxy: mode must be "enforce", "test" or "disabled", not ${JSON.stringify(policy.mode)}`);
    }
    const compiled = compilePolicy(policy);
    if (compiled.list.invalid.length > 0) {
      throw new FirewallError(
        "E_FIREWALL_INVALID_RULE",
        `egress proxy: ${compiled.list.invalid.map((d) => JSON.stringify(d)).join(", ")} ${compiled.list.invalid.length === 1 ? "is not a valid domain entry" : "are not valid domain entries"} ` +
          '(write "api.example.com", "*.example.org" or "api.example.com:8443")',
        { details: { invalid: compiled.list.invalid } },
      );
    }
    this.policies.set(key, compiled);
  }

  /** Allowed/denied counts per destination for one sandbox, or summed over all. In test mode "denied" counts what enforce would refuse. */
  stats(sandboxId?: string): ProxyCounts {
    return this.counters.get(sandboxId);
  }

  /** Bytes of ended tunnels per destination for one sandbox, or summed over all (kernel-relayed ones included). */
  tunnelBytes(sandboxId?: string): ProxyBytes {
    return this.counters.bytes(sandboxId);
  }

  /** Pids of the kernel relays (lg-relay) running now, one per busy tunnel handed over. */
  relayPids(): number[] {
    return this.relays.pids();
  }

  /** Drop a destroyed sandbox's counters (they are kept until then so its final stats can be read). */
  forgetStats(sandboxId: string): void {
    this.counters.forget(sandboxId);
  }

  private async listenOn(host: string, port: number): Promise<void> {
    const a = await this.listeners.add(host, port);
    // close() ran while we were binding: it could not see this listener, so it goes now.
    if (this.state === "closed") {
      await this.listeners.remove(host, a.port);
      return;
    }
    this.emit({ type: "listening", host: a.host, port: a.port });
  }

  private onConnection(socket: Socket): void {
    if (this.state === "closed") {
      socket.destroy();
      return;
    }
    const client = clientKey(socket.remoteAddress ?? "");
    this.track(socket);
    // No socket error may go unhandled; the owner of the socket (http server, tunnel) reacts to it too.
    socket.on("error", () => undefined);
    const open = (this.perClient.get(client) ?? 0) + 1;
    if (open > this.opts.maxConnectionsPerClient) {
      const limit = this.opts.maxConnectionsPerClient;
      this.emit({ type: "connection-limit", client, limit });
      closeWith(socket, rawRefusal(failure(429, `this client already has ${limit} open connections through the proxy; close some before opening more`)), LINGER_MS);
      return;
    }
    this.perClient.set(client, open);
    socket.once("close", () => {
      const n = (this.perClient.get(client) ?? 1) - 1;
      if (n <= 0) this.perClient.delete(client);
      else this.perClient.set(client, n);
    });
    this.sniff(socket, client);
  }

  /**
   * Read the first byte to tell SOCKS5 (version byte 5) from HTTP (a method name), then hand the
   * socket over with the byte put back. Uses a "readable" read so the stream is not left explicitly
   * paused: the http server resumes it and parses the put-back bytes before anything newer.
   */
  private sniff(socket: Socket, client: string): void {
    // Until a protocol owns the socket, nobody else ends it: a client that connects and goes away
    // (or never speaks) must not keep its connection slot.
    const onEnd = () => socket.destroy();
    socket.setTimeout(HEADERS_TIMEOUT_MS, onEnd);
    socket.once("end", onEnd);
    const onReadable = () => {
      const first = socket.read(1) as Buffer | null;
      if (first === null) return;
      socket.off("readable", onReadable);
      socket.off("end", onEnd);
      socket.off("timeout", onEnd);
      socket.setTimeout(0);
      if (first[0] === SOCKS5_VERSION) {
        const rest = socket.read() as Buffer | null;
        handleSocks(this.ctx, socket, client, rest ? Buffer.concat([first, rest]) : first);
        return;
      }
      socket.unshift(first);
      this.http.emit("connection", socket);
    };
    socket.on("readable", onReadable);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const client = clientKey(req.socket.remoteAddress ?? "");
    handleHttp(this.ctx, client, req, res).catch((err: unknown) => {
      this.emit({ type: "client-error", client, status: 502, message: `internal error: ${String(err)}` });
      sendRefusal(res, failure(502, "internal proxy error"));
    });
  }

  private onConnect(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const clientAddr = clientKey(socket.remoteAddress ?? "");
    const split = splitHostPort(req.url ?? "");
    const target = split?.port === undefined ? undefined : canonicalHost(split.host);
    if (!split || split.port === undefined || !target) {
      const r = failure(400, `CONNECT needs host:port (e.g. "CONNECT api.example.com:443"), not "${(req.url ?? "").slice(0, 100)}"`);
      this.emit({ type: "client-error", client: clientAddr, status: 400, message: r.message });
      closeWith(socket, rawRefusal(r));
      return;
    }
    openTunnel(this.ctx, {
      client: socket,
      clientAddr,
      protocol: "connect",
      target,
      port: split.port,
      head,
      accept: () => socket.write("HTTP/1.1 200 Connection Established\r\n\r\n"),
      refuse: (r) => closeWith(socket, rawRefusal(r)),
    }).catch((err: unknown) => {
      this.emit({ type: "client-error", client: clientAddr, status: 502, message: `internal error: ${String(err)}` });
      socket.destroy();
    });
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    // Node's own rule: answer only while the socket can take it and no response has begun.
    const started = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
    if (err.code === "ECONNRESET" || !socket.writable || started) {
      socket.destroy();
      return;
    }
    const client = clientKey(socket.remoteAddress ?? "");
    const r =
      err.code === "HPE_HEADER_OVERFLOW"
        ? failure(431, `the request head is larger than ${this.opts.maxHeaderBytes} bytes`)
        : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? failure(408, `the request head did not arrive within ${HEADERS_TIMEOUT_MS} ms`)
          : failure(400, `malformed request (${err.code ?? err.message})`);
    this.emit({ type: "client-error", client, status: r.status, message: r.message });
    closeWith(socket, rawRefusal(r));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    if (this.state === "closed") socket.destroy();
  }

  private emit(e: WithoutTime<ProxyEvent>): void {
    if (!this.opts.log) return;
    try {
      this.opts.log({ ...e, time: Date.now() } as ProxyEvent);
    } catch {
      // A failing logger must not take the proxy down with it.
    }
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
