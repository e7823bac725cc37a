/**
 * A small client for a running daemon over its Unix socket (node:http, no extra
 * dependency), for CLI commands. `connectIfRunning()` is how a command decides
 * between talking to the daemon and running embedded.
 */
import { request } from "node:http";
import { DaemonError } from "./errors.js";
import { defaultSocketPath } from "./listen.js";
import { SseParser, type SseEvent } from "./sse.js";

export type { SseEvent } from "./sse.js";

/** The daemon sends a heartbeat every 15 s; this long without a byte means the connection is dead. */
const STREAM_IDLE_MS = 45_000;

/** What GET /health answers. */
export interface DaemonHealth {
  ok: boolean;
  version: string;
  pid: number;
  backends: Record<string, string>;
  uptime: number;
  startedAt: string;
  agent: boolean;
  servers: { name: string; state: string; where?: string; tools?: number; lastError?: string | null }[];
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
        // agent: false: a kept-alive socket the daemon closes after 5 s idle races the global agent's own 5 s (EPIPE).
        { socketPath: this.socketPath, agent: false, method, path, headers: { host: "luminaguard", ...(payload ? { "content-type": "application/json", "content-length": String(payload.length) } : {}) }, timeout: opts.timeoutMs ?? 30_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new DaemonError("E_DAEMON_TIMEOUT", `The daemon on ${this.socketPath} did not answer ${method} ${path} in time.`)));
      req.on("error", (err: NodeJS.ErrnoException) => reject(connectError(err, this.socketPath)));
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

  /**
   * Read a server-sent event stream (GET /v1/events...) and call `onEvent` for
   * each event; heartbeats are skipped. Resolves when `signal` aborts; rejects
   * with E_DAEMON_STREAM_CLOSED when the daemon ends the stream (it stopped),
   * or with the daemon's own error when it refuses the request. `onOpen` runs
   * once the daemon has accepted the stream (events from then on are seen).
   */
  stream(path: string, onEvent: (e: SseEvent) => void, signal?: AbortSignal, opts: { onOpen?: () => void } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return resolve();
      let settled = false;
      const done = (err?: Error): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        req.destroy();
        if (err && !signal?.aborted) reject(err);
        else resolve();
      };
      const onAbort = (): void => done();
      const req = request({ socketPath: this.socketPath, method: "GET", path, headers: { host: "luminaguard", accept: "text/event-stream" } }, (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => done(errorFromBody(res.statusCode ?? 0, Buffer.concat(chunks), `GET ${path}`)));
          return;
        }
        const parser = new SseParser((e) => {
          if (!settled) onEvent(e);
        });
        res.on("data", (c: Buffer) => parser.push(c));
        res.on("end", () => done(new DaemonError("E_DAEMON_STREAM_CLOSED", `The daemon on ${this.socketPath} closed its event stream (it is stopping or was stopped); check it with \`luminaguard daemon status\`.`)));
        res.on("error", (err) => done(new DaemonError("E_DAEMON_STREAM_CLOSED", `The daemon's event stream broke: ${err.message}; check it with \`luminaguard daemon status\`.`, { cause: err })));
        opts.onOpen?.();
      });
      req.setTimeout(STREAM_IDLE_MS, () => done(new DaemonError("E_DAEMON_TIMEOUT", `The daemon on ${this.socketPath} sent nothing on its event stream for ${STREAM_IDLE_MS / 1000} s (not even a heartbeat); check it with \`luminaguard daemon status\`.`)));
      req.on("error", (err: NodeJS.ErrnoException) => done(connectError(err, this.socketPath)));
      signal?.addEventListener("abort", onAbort, { once: true });
      req.end();
    });
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

/** The daemon's `{error: {code, message}}` body as a DaemonError. */
function errorFromBody(status: number, body: Buffer, what: string): DaemonError {
  try {
    const e = (JSON.parse(body.toString("utf8")) as { error?: { code?: string; message?: string } }).error;
    if (e?.code) return new DaemonError(e.code, e.message ?? `The daemon answered ${what} with HTTP ${status}.`);
  } catch {
    // not JSON: fall through to the generic error
  }
  return new DaemonError("E_DAEMON_HTTP", `The daemon answered ${what} with HTTP ${status}.`);
}

function connectError(err: NodeJS.ErrnoException, socketPath: string): DaemonError {
  if (err instanceof DaemonError) return err;
  const down = err.code === "ENOENT" || err.code === "ECONNREFUSED";
  return new DaemonError(down ? "E_DAEMON_NOT_RUNNING" : "E_DAEMON_CONNECT", down ? `No daemon is running on ${socketPath}; start one with \`luminaguard daemon\`.` : `Cannot talk to the daemon on ${socketPath}: ${err.message}.`, { cause: err });
}
