/**
 * A small client for a running daemon over its Unix socket (node:http, no extra
 * dependency), for CLI commands. `connectIfRunning()` is how a command decides
 * between talking to the daemon and running embedded.
 */
import { request } from "node:http";
import { DaemonError } from "./errors.js";
import { defaultSocketPath } from "./listen.js";

/** What GET /health answers. */
export interface DaemonHealth {
  ok: boolean;
  version: string;
  pid: number;
  backends: Record<string, string>;
  uptime: number;
  startedAt: string;
  agent: boolean;
  servers: { name: string; state: string }[];
}

/** A raw answer. */
export interface DaemonResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Talks to the daemon on one socket. */
export class DaemonClient {
  constructor(readonly socketPath: string = defaultSocketPath()) {}

  /** Send one request; resolves with the whole answer (any status). */
  raw(method: string, path: string, body?: unknown, opts: { timeoutMs?: number } = {}): Promise<DaemonResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        { socketPath: this.socketPath, method, path, headers: { host: "luminaguard", ...(payload ? { "content-type": "application/json", "content-length": String(payload.length) } : {}) }, timeout: opts.timeoutMs ?? 30_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new DaemonError("E_DAEMON_TIMEOUT", `The daemon on ${this.socketPath} did not answer ${method} ${path} in time.`)));
      req.on("error", (err: NodeJS.ErrnoException) => {
        if (err instanceof DaemonError) return reject(err);
        const down = err.code === "ENOENT" || err.code === "ECONNREFUSED";
        reject(new DaemonError(down ? "E_DAEMON_NOT_RUNNING" : "E_DAEMON_CONNECT", down ? `No daemon is running on ${this.socketPath}; start one with \`luminaguard daemon\`.` : `Cannot talk to the daemon on ${this.socketPath}: ${err.message}.`, { cause: err }));
      });
      req.end(payload);
    });
  }

  /** JSON request; a non-2xx answer throws a DaemonError with the daemon's own code and message. */
  async json<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body);
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.body.toString("utf8"));
    } catch {
      throw new DaemonError("E_DAEMON_PROTOCOL", `The daemon answered ${method} ${path} with HTTP ${res.status} and a body that is not JSON.`);
    }
    if (res.status < 200 || res.status > 299) {
      const e = (parsed as { error?: { code?: string; message?: string } }).error;
      throw new DaemonError(e?.code ?? "E_DAEMON_HTTP", e?.message ?? `The daemon answered ${method} ${path} with HTTP ${res.status}.`);
    }
    return parsed as T;
  }

  /** GET /health. */
  health(): Promise<DaemonHealth> {
    return this.json<DaemonHealth>("GET", "/health");
  }
}

/** A client when a daemon answers on `socketPath`, else undefined (run embedded). */
export async function connectIfRunning(socketPath: string = defaultSocketPath()): Promise<DaemonClient | undefined> {
  const client = new DaemonClient(socketPath);
  try {
    const res = await client.raw("GET", "/health", undefined, { timeoutMs: 2_000 });
    return res.status === 200 ? client : undefined;
  } catch {
    return undefined;
  }
}
