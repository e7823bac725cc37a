/**
 * Shared pieces of the egress-proxy integration tests. Everything listens and
 * connects on loopback only; names resolve through an injected map, never DNS.
 */
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request, type IncomingHttpHeaders, type Server as HttpServer } from "node:http";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EgressProxy, type EgressProxyOptions, type ProxyEvent } from "../../src/policy/firewall/proxy.js";

export const LOOPBACK = "127.0.0.1";

/** Things to close after a test, closed last-in first-out. */
export class Cleanup {
  private readonly fns: (() => unknown)[] = [];
  add(fn: () => unknown): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) await fn();
  }
}

/** Listen on loopback and return the port. */
export async function listen(server: Server, host = LOOPBACK, port = 0): Promise<number> {
  server.listen(port, host);
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

/** Close a server and every connection it still has. */
export async function closeServer(server: Server | HttpServer): Promise<void> {
  if (!server.listening) return;
  const closed = once(server, "close");
  server.close();
  if ("closeAllConnections" in server) server.closeAllConnections();
  await closed;
}

/** A TCP server that tracks its sockets, so closing it ends them too. */
export function tcpServer(onSocket: (s: Socket) => void): Server {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    onSocket(s);
  });
  server.on("close", () => sockets.forEach((s) => s.destroy()));
  const close = server.close.bind(server);
  server.close = (cb?: (err?: Error) => void) => {
    sockets.forEach((s) => s.destroy());
    return close(cb);
  };
  return server;
}

/** A resolver for test names: every name maps to loopback addresses; unknown names fail like DNS does. */
export function mapResolver(map: Record<string, string[] | "hang">): (name: string) => Promise<string[]> {
  return (name) => {
    const found = map[name];
    if (found === "hang") return new Promise(() => undefined);
    if (found) return Promise.resolve(found);
    return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: "ENOTFOUND" }));
  };
}

/** Start a proxy on an ephemeral loopback port; it is closed by `cleanup`. */
export async function startProxy(cleanup: Cleanup, opts: Partial<EgressProxyOptions>): Promise<{ proxy: EgressProxy; port: number; events: ProxyEvent[] }> {
  const events: ProxyEvent[] = [];
  const proxy = new EgressProxy({ listen: [{ host: LOOPBACK, port: 0 }], log: (e) => events.push(e), ...opts });
  cleanup.add(() => proxy.close());
  await proxy.start();
  return { proxy, port: proxy.addresses()[0]!.port, events };
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A plain-HTTP proxy request (absolute URI) from `localAddress`. */
export function proxyRequest(
  proxyPort: number,
  url: string,
  opts: { localAddress?: string; method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: LOOPBACK, port: proxyPort, path: url, method: opts.method ?? "GET", headers: opts.headers, agent: false, localAddress: opts.localAddress });
    req.on("error", reject);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.end(opts.body);
  });
}

/** A CONNECT request; on 200 the socket is the tunnel (the caller closes it), otherwise `body` is the refusal text. */
export function proxyConnect(proxyPort: number, authority: string, opts: { localAddress?: string } = {}): Promise<Reply & { socket: Socket; head: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: LOOPBACK, port: proxyPort, method: "CONNECT", path: authority, agent: false, localAddress: opts.localAddress });
    req.on("error", reject);
    req.on("connect", (res, socket: Socket, head: Buffer) => {
      const status = res.statusCode ?? 0;
      if (status === 200) {
        resolve({ status, headers: res.headers, body: "", socket, head });
        return;
      }
      readAll(socket).then((rest) => resolve({ status, headers: res.headers, body: Buffer.concat([head, rest]).toString(), socket, head }), reject);
    });
    req.end();
  });
}

/** Everything a socket sends until it ends or closes. */
export function readAll(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => undefined);
    socket.once("close", () => resolve(Buffer.concat(chunks)));
    socket.once("end", () => socket.end());
  });
}

/** Read until `n` bytes arrived. */
export function readBytes(socket: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const onData = (c: Buffer) => {
      chunks.push(c);
      have += c.length;
      if (have >= n) {
        socket.off("data", onData);
        resolve(Buffer.concat(chunks));
      }
    };
    socket.on("data", onData);
    socket.once("close", () => reject(new Error(`socket closed after ${have} of ${n} bytes`)));
  });
}

/** A self-signed certificate for `name`, made with the openssl CLI; undefined (with the reason) when it is missing. */
export function selfSignedCert(name: string): { key: string; cert: string } | { skip: string } {
  const dir = mkdtempSync(join(tmpdir(), "lg-proxy-cert-"));
  try {
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem"), "-days", "1", "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`],
      { stdio: "ignore" },
    );
    return { key: readFileSync(join(dir, "k.pem"), "utf8"), cert: readFileSync(join(dir, "c.pem"), "utf8") };
  } catch (err) {
    return { skip: `openssl could not make a test certificate (${(err as Error).message.split("\n")[0]})` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Wait until `cond` holds (polling), or fail with `what`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Decisions logged so far, as "decision reason destination" lines (easy to assert on). */
export function decisions(events: ProxyEvent[]): string[] {
  return events.flatMap((e) => (e.type === "decision" ? [`${e.decision} ${e.reason} ${e.destination}`] : []));
}
