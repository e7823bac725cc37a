/**
 * The egress proxy's listening sockets. There is one per sandbox in real use
 * (on the host side of the sandbox's veth, the only proxy address its rules
 * let it reach), added and removed as sandboxes come and go, so each listener
 * keeps the connections it accepted: removing it ends them with it.
 */
import { createServer, type Server, type Socket } from "node:net";
import { FirewallError } from "./errors.js";
import { canonicalHost } from "./proxy-match.js";

/**
 * Socket buffers of 256 KiB instead of 16 KiB: a bulk transfer then pauses and
 * resumes its source a quarter as often. Applies to accepted (sandbox-side) sockets.
 */
const HIGH_WATER_MARK = 256 * 1024;

interface Listener {
  server: Server;
  sockets: Set<Socket>;
}

/** A set of TCP listeners keyed by address and port. */
export class Listeners {
  private readonly byKey = new Map<string, Listener>();

  constructor(
    private readonly onConnection: (socket: Socket) => void,
    private readonly onError: (where: string, err: NodeJS.ErrnoException) => void,
  ) {}

  /** Listen on host:port (0: any free port). Already listening there: nothing to do. Throws E_FIREWALL_PROXY. */
  async add(host: string, port: number): Promise<{ host: string; port: number }> {
    const existing = port === 0 ? undefined : this.byKey.get(key(host, port));
    if (existing) return bound(existing.server);
    const sockets = new Set<Socket>();
    const server = createServer({ allowHalfOpen: true, noDelay: true, highWaterMark: HIGH_WATER_MARK }, (socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      this.onConnection(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.off("error", reject);
        resolve();
      });
    }).catch((err: NodeJS.ErrnoException) => {
      throw new FirewallError("E_FIREWALL_PROXY", listenFailure(host, port, err), { cause: err, details: { host, port, code: err.code } });
    });
    // Errors after listening (EMFILE on accept, ...) are reported; they must not crash the runtime.
    server.on("error", (err: NodeJS.ErrnoException) => this.onError(`${host}:${port}`, err));
    const addr = bound(server);
    this.byKey.set(key(host, addr.port), { server, sockets });
    return addr;
  }

  /** Stop listening on host:port and end the connections accepted there. Unknown address: nothing to do. */
  async remove(host: string, port: number): Promise<void> {
    const k = key(host, port);
    const l = this.byKey.get(k);
    if (!l) return;
    this.byKey.delete(k);
    await closeListener(l);
  }

  /** Close every listener and its connections. */
  async closeAll(): Promise<void> {
    const all = [...this.byKey.values()];
    this.byKey.clear();
    await Promise.all(all.map(closeListener));
  }

  /** Where the listeners are bound. */
  addresses(): { host: string; port: number }[] {
    return [...this.byKey.values()].map((l) => bound(l.server));
  }
}

function key(host: string, port: number): string {
  const c = canonicalHost(host);
  return `${c?.host ?? host.toLowerCase()}|${port}`;
}

function bound(server: Server): { host: string; port: number } {
  const a = server.address();
  return a && typeof a === "object" ? { host: a.address, port: a.port } : { host: "", port: 0 };
}

function closeListener(l: Listener): Promise<void> {
  const closed = new Promise<void>((resolve) => l.server.close(() => resolve()));
  for (const s of l.sockets) s.destroy();
  return closed;
}

function listenFailure(host: string, port: number, err: NodeJS.ErrnoException): string {
  const where = `${host}:${port}`;
  switch (err.code) {
    case "EADDRINUSE":
      return `egress proxy cannot listen on ${where}: the address is already in use. Stop the process holding it (\`ss -ltnp 'sport = :${port}'\`) or configure another proxy port.`;
    case "EADDRNOTAVAIL":
      return `egress proxy cannot listen on ${where}: ${host} is not an address of this host. Bring up the sandbox's veth (host side) first, or listen on an existing address.`;
    case "EACCES":
      return `egress proxy cannot listen on ${where}: ports below 1024 need root (CAP_NET_BIND_SERVICE). Run as root or use a port of 1024 or more.`;
    default:
      return `egress proxy cannot listen on ${where} (${err.code ?? err.message}). Check the address and port in the proxy configuration.`;
  }
}
