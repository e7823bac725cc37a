/**
 * A fetch that sends its requests over a Unix socket (node:http with
 * `socketPath`), for clients that take a `fetch` option, such as the MCP SDK's
 * StreamableHTTPClientTransport talking to the daemon's /mcp. The global fetch
 * cannot reach a Unix socket without undici's Agent, which is not a dependency.
 * The answer is a web Response whose body streams as bytes arrive, so
 * server-sent events are read while the daemon is still sending them.
 */
import { request, type IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { DaemonError } from "./errors.js";

/** The fetch signature the MCP SDK (and most clients) accept. */
export type SocketFetch = (url: string | URL, init?: RequestInit) => Promise<Response>;

/** Statuses whose Response must have a null body (the Response constructor throws otherwise). */
const NULL_BODY = new Set([101, 204, 205, 304]);

/**
 * A fetch over `socketPath`: the URL's path and query are sent, its host only
 * as the Host header. Aborting `init.signal` rejects a pending answer, or
 * errors a body still streaming, with an AbortError as fetch does.
 */
export function socketFetch(socketPath: string): SocketFetch {
  return async (input, init = {}) => {
    const url = new URL(typeof input === "string" ? input : input.href);
    const signal = init.signal ?? undefined;
    signal?.throwIfAborted();
    const headers = new Headers(init.headers);
    if (!headers.has("host")) headers.set("host", url.host || "localhost");
    // Any BodyInit (string, bytes, URLSearchParams, a stream) as bytes, as fetch would send it.
    const payload = init.body === undefined || init.body === null ? undefined : Buffer.from(await new Response(init.body).arrayBuffer());
    if (payload) headers.set("content-length", String(payload.length));
    const method = (init.method ?? "GET").toUpperCase();

    return new Promise<Response>((resolve, reject) => {
      let res: IncomingMessage | undefined;
      const onAbort = (): void => {
        const reason = abortError(signal);
        // After the answer arrived the body stream carries the error; before it, the promise does.
        if (res) res.destroy(reason);
        else req.destroy(reason);
      };
      // agent: false: a fresh connection per request (cheap on a Unix socket); a kept-alive one can be closed under us.
      const req = request({ socketPath, agent: false, method, path: `${url.pathname}${url.search}`, headers: Object.fromEntries(headers) }, (incoming) => {
        res = incoming;
        const status = incoming.statusCode ?? 0;
        const out = new Headers();
        const raw = incoming.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) out.append(raw[i]!, raw[i + 1]!);
        incoming.once("close", () => signal?.removeEventListener("abort", onAbort));
        let body: ReadableStream<Uint8Array> | null = null;
        if (NULL_BODY.has(status) || method === "HEAD") incoming.resume();
        else body = Readable.toWeb(incoming) as ReadableStream<Uint8Array>;
        try {
          resolve(new Response(body, { status, statusText: incoming.statusMessage ?? "", headers: out }));
        } catch (err) {
          incoming.destroy();
          reject(new DaemonError("E_DAEMON_PROTOCOL", `The daemon on ${socketPath} answered ${method} ${url.pathname} with an unusable HTTP status ${status}.`, { cause: err }));
        }
      });
      req.on("error", (err: NodeJS.ErrnoException) => {
        signal?.removeEventListener("abort", onAbort);
        if (signal?.aborted) return reject(abortError(signal));
        // fetch rejects with a TypeError on network failures; callers that check for one still can via `cause`.
        const down = err.code === "ENOENT" || err.code === "ECONNREFUSED";
        reject(
          new DaemonError(down ? "E_DAEMON_NOT_RUNNING" : "E_DAEMON_CONNECT", down ? `No daemon is running on ${socketPath}; start one with \`luminaguard daemon\`.` : `Cannot talk to the daemon on ${socketPath}: ${err.message}.`, {
            cause: err,
          }),
        );
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      req.end(payload);
    });
  };
}

/** What fetch rejects with on abort: the signal's reason when it is an Error, else a DOMException AbortError. */
function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new DOMException("This operation was aborted", "AbortError");
}
