/**
 * The daemon's listeners: a Unix socket (mode 0600; a stale one left by a dead
 * daemon is removed, a live one means another daemon runs) and an optional
 * loopback TCP port. Requests in flight are counted so shutdown can wait for them.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { getRequestListener } from "@hono/node-server";
import { runtimeDir } from "../config/paths.js";
import type { DaemonApp, Via } from "./context.js";
import { DaemonError } from "./errors.js";

/** The default socket: <runtimeDir>/daemon.sock. */
export function defaultSocketPath(): string {
  return join(runtimeDir(), "daemon.sock");
}

/** One bound listener. */
export interface Listener {
  via: Via;
  /** Socket path or http://host:port. */
  where: string;
  port?: number;
  server: Server;
}

/** Counts requests whose responses have not finished. */
export class InFlight {
  #count = 0;
  #idle: (() => void)[] = [];

  track(res: ServerResponse): void {
    this.#count++;
    res.once("close", () => {
      this.#count--;
      if (this.#count === 0) for (const f of this.#idle.splice(0)) f();
    });
  }

  get count(): number {
    return this.#count;
  }

  /** Resolves when nothing is in flight, or after `ms`; true when drained. */
  drained(ms: number): Promise<boolean> {
    if (this.#count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

function handler(app: DaemonApp, via: Via, inflight: InFlight): (req: IncomingMessage, res: ServerResponse) => void {
  const listener = getRequestListener((request, env) => app.fetch(request, { ...env, via }));
  return (req, res) => {
    inflight.track(res);
    void listener(req, res);
  };
}

/** E_DAEMON_RUNNING when a daemon answers on `path`; removes a stale socket file. */
export async function claimSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new DaemonError("E_DAEMON_SOCKET", `${path} exists and is not a socket; move it away or choose another path with --socket.`);
  const alive = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
  if (alive) throw new DaemonError("E_DAEMON_RUNNING", `A LuminaGuard daemon is already running on ${path}; stop it first (\`luminaguard daemon status\` shows it) or use another --socket.`);
  unlinkSync(path);
}

/** Listen on the Unix socket, readable and writable by this user only. */
export async function listenUnix(app: DaemonApp, path: string, inflight: InFlight): Promise<Listener> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  await claimSocket(path);
  const server = createServer(handler(app, "unix", inflight));
  // The umask makes the socket 0600 from the moment it exists, not only after the chmod below.
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) => reject(new DaemonError("E_DAEMON_LISTEN", `Cannot listen on ${path}: ${err.message}.`, { cause: err })));
      server.listen(path, () => resolve());
    });
  } finally {
    process.umask(old);
  }
  chmodSync(path, 0o600);
  return { via: "unix", where: path, server };
}

/** Listen on host:port (loopback by default; the token guards it). */
export async function listenTcp(app: DaemonApp, host: string, port: number, inflight: InFlight): Promise<Listener> {
  const server = createServer(handler(app, "tcp", inflight));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new DaemonError("E_DAEMON_LISTEN", err.code === "EADDRINUSE" ? `Port ${port} on ${host} is in use; pick another with --port or daemon.tcp.port.` : `Cannot listen on ${host}:${port}: ${err.message}.`, { cause: err })),
    );
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const bound = typeof addr === "object" && addr ? addr.port : port;
  return { via: "tcp", where: `http://${host.includes(":") ? `[${host}]` : host}:${bound}`, port: bound, server };
}
