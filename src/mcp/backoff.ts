/**
 * When and how long to wait before reconnecting to an MCP server. Retries are
 * for trouble that can pass (a refused connection, 408, 429, 5xx); never for
 * a refusal that will repeat (401/403, 501/505, a protocol mismatch).
 */
import { McpError } from "./errors.js";

export interface BackoffOptions {
  /** Attempts after the first failure before giving up. */
  attempts: number;
  /** First delay; doubles each attempt. */
  baseMs: number;
  /** Upper bound of one delay. */
  maxMs: number;
}

/** Delay before retry number `attempt` (0-based): exponential with "full jitter", so many hubs don't retry in step. */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** HTTP statuses worth retrying: timeouts, rate limits and server errors that are not "never going to work". */
export function retryableStatus(status: number): boolean {
  if (status === 408 || status === 429) return true;
  return status >= 500 && status <= 599 && status !== 501 && status !== 505;
}

/** The HTTP status an SDK transport error carries, when it carries one. */
export function httpStatusOf(err: unknown): number | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "number" && code >= 100 && code <= 599) return code;
    if (e.name === "UnauthorizedError") return 401;
    const m = /\(HTTP (\d{3})\)|\bHTTP (\d{3})\b|Non-200 status code \((\d{3})\)/.exec(e.message);
    if (m) return Number(m[1] ?? m[2] ?? m[3]);
  }
  return undefined;
}

/** True when connecting again might work. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof McpError && (err.code === "E_MCP_AUTH" || err.code === "E_MCP_EGRESS_DENIED" || err.code === "E_MCP_CLOSED")) return false;
  const status = httpStatusOf(err);
  if (status !== undefined) return retryableStatus(status);
  // No status: a refused or reset connection, a process that died at start. Try again.
  return true;
}

/** Sleep that ends early (resolving false) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
