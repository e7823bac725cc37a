/** Small pieces every SDK provider needs: argument parsing, error description, a guard against retrying a stream that already spoke. */
import { AgentError } from "../errors.js";
import type { HttpFailure } from "./keys.js";
import { retryAfterMs } from "./keys.js";

/** Tool-call arguments as the model wrote them (JSON text), or the raw text when it is not a JSON object. */
export function parseToolArgs(text: string): { args: Record<string, unknown>; invalidArgs?: string } {
  if (text.trim() === "") return { args: {} };
  try {
    const v: unknown = JSON.parse(text);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) return { args: v as Record<string, unknown> };
  } catch {
    // fall through: the model wrote something that is not JSON
  }
  return { args: {}, invalidArgs: text };
}

/** Arguments as an object, whatever a provider handed back (Anthropic and Ollama give objects already). */
export function objectArgs(v: unknown): { args: Record<string, unknown>; invalidArgs?: string } {
  if (typeof v === "string") return parseToolArgs(v);
  if (v !== null && typeof v === "object" && !Array.isArray(v)) return { args: v as Record<string, unknown> };
  return { args: {}, invalidArgs: JSON.stringify(v) ?? String(v) };
}

interface SdkApiError {
  status?: number | undefined;
  headers?: Headers | undefined;
  message: string;
}

/**
 * An HttpFailure from an OpenAI or Anthropic SDK error (both are Stainless SDKs with the same error shape),
 * or undefined for errors that are not about HTTP (those are not retried).
 */
export function sdkFailure(err: unknown, classes: { api: abstract new (...a: never[]) => Error; connection: abstract new (...a: never[]) => Error; abort: abstract new (...a: never[]) => Error }): HttpFailure | undefined {
  if (err instanceof classes.abort || !(err instanceof classes.api)) return undefined;
  const e = err as unknown as SdkApiError;
  const connection = err instanceof classes.connection;
  const headers = e.headers;
  return {
    status: connection ? undefined : e.status,
    retryAfterMs: headers ? retryAfterMs((n) => headers.get(n)) : undefined,
    // The SDKs put the status in front of the message; ours says it already.
    message: e.message.replace(/^\d{3}\s+/, "") || "no details",
    connection,
  };
}

/**
 * Runs a streaming request: once text has reached the caller a retry would
 * show it twice, so a failure after that is final (E_AGENT_PROVIDER).
 */
export class StreamGuard {
  spoke = false;

  constructor(private readonly label: string) {}

  /** Pass text on to `onText`, remembering that the caller has seen some. */
  text(delta: string, onText: ((d: string) => void) | undefined): void {
    if (delta === "") return;
    this.spoke = true;
    onText?.(delta);
  }

  /** Rethrow `err`, as a final error when the caller already saw part of the answer. */
  fail(err: unknown, signal: AbortSignal | undefined): never {
    if (this.spoke && !signal?.aborted && !(err instanceof AgentError)) {
      throw new AgentError("E_AGENT_PROVIDER", `The answer from ${this.label} broke off while streaming: ${(err as Error).message ?? String(err)}. Try again.`, { cause: err });
    }
    throw err;
  }
}
