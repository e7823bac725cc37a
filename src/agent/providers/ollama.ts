/**
 * Ollama's chat API through the official `ollama` client: tools, NDJSON
 * streaming. Ollama has no tool-call ids, so we make them; a key (for hosted
 * Ollama, OLLAMA_API_KEY with _2, _3 … fallbacks) goes in as a bearer token.
 */
import { Ollama, type ChatRequest, type ChatResponse, type Message, type Tool, type ToolCall } from "ollama";
import { randomUUID } from "node:crypto";
import type { AgentMessage, CompletionRequest, CompletionResult, Provider, ToolCallRequest } from "../types.js";
import { ToolNameMap } from "../tool-names.js";
import { DEFAULT_RETRY, KeyRing, retryAfterMs, type HttpFailure, type RetryPolicy } from "./keys.js";
import { StreamGuard, objectArgs } from "./shared.js";

export interface OllamaProviderOptions {
  model: string;
  /** OLLAMA_HOST or agent.baseUrl; default http://127.0.0.1:11434. */
  host?: string | undefined;
  /** OLLAMA_API_KEY, _2, … (hosted Ollama); empty for a local server. */
  keys?: string[] | undefined;
  stream?: boolean | undefined;
  retry?: RetryPolicy | undefined;
}

/** A local or hosted Ollama server. */
export class OllamaProvider implements Provider {
  readonly name = "ollama";
  readonly model: string;
  private readonly ring: KeyRing;
  private readonly host: string;
  private readonly stream: boolean;
  private readonly keyed: boolean;

  constructor(opts: OllamaProviderOptions) {
    this.model = opts.model;
    this.host = opts.host ?? "http://127.0.0.1:11434";
    this.stream = opts.stream ?? true;
    const keys = opts.keys ?? [];
    this.keyed = keys.length > 0;
    this.ring = new KeyRing(keys, { label: "Ollama", variable: keys.length > 0 ? "OLLAMA_API_KEY" : undefined, where: this.host, retry: opts.retry ?? DEFAULT_RETRY });
  }

  async complete(req: CompletionRequest): Promise<CompletionResult> {
    const names = new ToolNameMap(req.tools.map((t) => t.name));
    const body: ChatRequest = {
      model: this.model,
      messages: toOllama(req.system, req.messages, names),
      ...(req.tools.length > 0 ? { tools: req.tools.map((t): Tool => ({ type: "function", function: { name: names.safe(t.name), description: t.description, parameters: t.inputSchema as Tool["function"]["parameters"] } })) } : {}),
      ...(req.maxTokens ? { options: { num_predict: req.maxTokens } } : {}),
    };
    // The client reports only a status on errors; the fetch we hand it keeps the headers (Retry-After).
    let lastHeaders: Headers | undefined;
    const { value, keyIndex } = await this.ring.run(
      async (key, signal) => {
        const client = new Ollama({ host: this.host, fetch: this.fetcher(signal, (h) => (lastHeaders = h)), ...(key ? { headers: { Authorization: `Bearer ${key}` } } : {}) });
        return this.stream ? this.streamed(client, body, names, req, signal) : fromResponse(await client.chat({ ...body, stream: false }), "", [], names);
      },
      (err) => ollamaFailure(err, lastHeaders),
      req.signal,
      req.onNotice,
    );
    return { ...value, ...(this.keyed ? { keyIndex } : {}) };
  }

  /** fetch bound to this request's signal (the client takes none for chat), normalising error bodies to JSON. */
  private fetcher(signal: AbortSignal | undefined, seen: (h: Headers) => void): typeof fetch {
    return async (input, init) => {
      const signals = [init?.signal, signal].filter((s): s is AbortSignal => !!s);
      const res = await fetch(input, { ...init, signal: signals.length > 0 ? AbortSignal.any(signals) : null });
      seen(res.headers);
      if (res.ok || res.headers.get("content-type")?.includes("application/json")) return res;
      // The client logs to the console when an error body is not JSON; give it JSON instead.
      const text = await res.text().catch(() => "");
      return new Response(JSON.stringify({ error: text.trim() || res.statusText || `HTTP ${res.status}` }), { status: res.status, statusText: res.statusText, headers: { "content-type": "application/json" } });
    };
  }

  private async streamed(client: Ollama, body: ChatRequest, names: ToolNameMap, req: CompletionRequest, signal: AbortSignal | undefined): Promise<Omit<CompletionResult, "keyIndex">> {
    const guard = new StreamGuard("Ollama");
    try {
      const parts = await client.chat({ ...body, stream: true });
      const onAbort = (): void => parts.abort();
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        let text = "";
        const calls: ToolCall[] = [];
        let last: ChatResponse | undefined;
        for await (const part of parts) {
          const delta = part.message?.content ?? "";
          text += delta;
          guard.text(delta, req.onText);
          calls.push(...(part.message?.tool_calls ?? []));
          last = part;
        }
        return fromResponse(last, text, calls, names);
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
    } catch (err) {
      return guard.fail(err, signal);
    }
  }
}

function fromResponse(res: ChatResponse | undefined, streamedText: string, streamedCalls: ToolCall[], names: ToolNameMap): Omit<CompletionResult, "keyIndex"> {
  const text = streamedText || (res?.message?.content ?? "");
  const raw = streamedCalls.length > 0 ? streamedCalls : (res?.message?.tool_calls ?? []);
  const calls = raw.map((c): ToolCallRequest => ({ id: `ollama_${randomUUID().slice(0, 8)}`, name: names.hub(c.function.name), ...objectArgs(c.function.arguments) }));
  return {
    message: { role: "assistant", text, toolCalls: calls },
    usage: { inputTokens: res?.prompt_eval_count ?? 0, outputTokens: res?.eval_count ?? 0 },
    stop: calls.length > 0 ? "tool_calls" : res?.done_reason === "length" ? "max_tokens" : "end",
  };
}

/** What the ollama client threw, as an HttpFailure (its ResponseError carries only the status). */
function ollamaFailure(err: unknown, headers: Headers | undefined): HttpFailure | undefined {
  if (!(err instanceof Error) || err.name === "AbortError") return undefined;
  const status = (err as { status_code?: unknown }).status_code;
  if (typeof status === "number") return { status, retryAfterMs: headers ? retryAfterMs((n) => headers.get(n)) : undefined, message: err.message, connection: false };
  // fetch() itself failed: nothing answered.
  if (err instanceof TypeError && /fetch failed/i.test(err.message)) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    return { status: undefined, retryAfterMs: undefined, message: cause ?? err.message, connection: true };
  }
  return undefined;
}

/** Our conversation in Ollama's shape: a `tool` message per result, named by tool. */
export function toOllama(system: string, messages: AgentMessage[], names: ToolNameMap): Message[] {
  const out: Message[] = [{ role: "system", content: system }];
  for (const m of messages) {
    if (m.role === "user") out.push({ role: "user", content: m.text });
    else if (m.role === "assistant") {
      out.push({ role: "assistant", content: m.text, ...(m.toolCalls.length > 0 ? { tool_calls: m.toolCalls.map((c) => ({ function: { name: names.safe(c.name), arguments: c.args } })) } : {}) });
    } else for (const r of m.results) out.push({ role: "tool", content: r.text, tool_name: names.safe(r.name) });
  }
  return out;
}
