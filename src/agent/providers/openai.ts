/**
 * OpenAI chat completions (and compatible servers) through the official SDK:
 * function calling with native tool_call ids, streaming with usage.
 */
import OpenAI, { APIConnectionError, APIError, APIUserAbortError } from "openai";
import type { ChatCompletionChunk, ChatCompletionCreateParamsBase, ChatCompletionMessageParam, ChatCompletionTool } from "openai/resources/chat/completions";
import type { AgentMessage, CompletionRequest, CompletionResult, Provider, ToolCallRequest, ToolSpec } from "../types.js";
import { ToolNameMap } from "../tool-names.js";
import { DEFAULT_RETRY, KeyRing, type RetryPolicy } from "./keys.js";
import { StreamGuard, parseToolArgs, sdkFailure } from "./shared.js";

export interface OpenAIProviderOptions {
  model: string;
  /** OPENAI_API_KEY, then OPENAI_API_KEY_2, … */
  keys: string[];
  baseUrl?: string | undefined;
  stream?: boolean | undefined;
  retry?: RetryPolicy | undefined;
}

const DEFAULT_BASE = "https://api.openai.com/v1";
const ERRORS = { api: APIError, connection: APIConnectionError, abort: APIUserAbortError };

/** OpenAI or any server that speaks its chat completions API. */
export class OpenAIProvider implements Provider {
  readonly name = "openai";
  readonly model: string;
  private readonly ring: KeyRing;
  private readonly clients = new Map<string, OpenAI>();
  private readonly baseUrl: string;
  private readonly stream: boolean;

  constructor(opts: OpenAIProviderOptions) {
    this.model = opts.model;
    this.baseUrl = opts.baseUrl ?? DEFAULT_BASE;
    this.stream = opts.stream ?? true;
    this.ring = new KeyRing(opts.keys, { label: "OpenAI", variable: "OPENAI_API_KEY", where: this.baseUrl, retry: opts.retry ?? DEFAULT_RETRY });
  }

  async complete(req: CompletionRequest): Promise<CompletionResult> {
    const names = new ToolNameMap(req.tools.map((t) => t.name));
    const body: ChatCompletionCreateParamsBase = {
      model: this.model,
      messages: toOpenAI(req.system, req.messages, names),
      ...(req.tools.length > 0 ? { tools: req.tools.map((t) => toTool(t, names)) } : {}),
      ...(req.maxTokens ? { max_completion_tokens: req.maxTokens } : {}),
    };
    const { value, keyIndex } = await this.ring.run(
      (key, signal) => (this.stream ? this.streamed(this.client(key), body, names, req, signal) : this.single(this.client(key), body, names, signal)),
      (err) => sdkFailure(err, ERRORS),
      req.signal,
      req.onNotice,
    );
    return { ...value, keyIndex };
  }

  private client(key: string | undefined): OpenAI {
    const k = key ?? "";
    let c = this.clients.get(k);
    if (!c) {
      // Retries are ours (KeyRing): the SDK's own would keep hammering a rate-limited key.
      c = new OpenAI({ apiKey: k, baseURL: this.baseUrl, maxRetries: 0, logLevel: "off" });
      this.clients.set(k, c);
    }
    return c;
  }

  private async single(client: OpenAI, body: ChatCompletionCreateParamsBase, names: ToolNameMap, signal: AbortSignal | undefined): Promise<Omit<CompletionResult, "keyIndex">> {
    const res = await client.chat.completions.create({ ...body, stream: false }, { signal });
    const choice = res.choices[0];
    const calls: ToolCallRequest[] = [];
    for (const tc of choice?.message.tool_calls ?? []) {
      if (tc.type !== "function") continue;
      calls.push({ id: tc.id, name: names.hub(tc.function.name), ...parseToolArgs(tc.function.arguments) });
    }
    return finish(choice?.message.content ?? "", calls, choice?.finish_reason ?? null, res.usage);
  }

  private async streamed(client: OpenAI, body: ChatCompletionCreateParamsBase, names: ToolNameMap, req: CompletionRequest, signal: AbortSignal | undefined): Promise<Omit<CompletionResult, "keyIndex">> {
    const guard = new StreamGuard("OpenAI");
    try {
      const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }, { signal });
      let text = "";
      let finishReason: string | null = null;
      let usage: ChatCompletionChunk["usage"] = null;
      const slots: { id: string; name: string; args: string }[] = [];
      for await (const chunk of stream) {
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices[0];
        if (!choice) continue;
        if (choice.delta.content) {
          text += choice.delta.content;
          guard.text(choice.delta.content, req.onText);
        }
        // Tool calls arrive in pieces keyed by index: the id and name first, the arguments in fragments.
        for (const tc of choice.delta.tool_calls ?? []) {
          const slot = (slots[tc.index] ??= { id: "", name: "", args: "" });
          if (tc.id) slot.id = tc.id;
          if (tc.function?.name) slot.name += tc.function.name;
          if (tc.function?.arguments) slot.args += tc.function.arguments;
        }
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
      const calls = slots.filter(Boolean).map((s, i): ToolCallRequest => ({ id: s.id || `call_${i}`, name: names.hub(s.name), ...parseToolArgs(s.args) }));
      return finish(text, calls, finishReason, usage);
    } catch (err) {
      return guard.fail(err, signal);
    }
  }
}

function finish(text: string, toolCalls: ToolCallRequest[], reason: string | null, usage: { prompt_tokens: number; completion_tokens: number } | null | undefined): Omit<CompletionResult, "keyIndex"> {
  return {
    message: { role: "assistant", text, toolCalls },
    usage: { inputTokens: usage?.prompt_tokens ?? 0, outputTokens: usage?.completion_tokens ?? 0 },
    // Some compatible servers say "stop" even when they called tools; the calls are what count.
    stop: toolCalls.length > 0 ? "tool_calls" : reason === "length" ? "max_tokens" : "end",
  };
}

function toTool(t: ToolSpec, names: ToolNameMap): ChatCompletionTool {
  return { type: "function", function: { name: names.safe(t.name), description: t.description, parameters: t.inputSchema } };
}

/** Our conversation in OpenAI's shape: each tool result is its own `tool` message. */
export function toOpenAI(system: string, messages: AgentMessage[], names: ToolNameMap): ChatCompletionMessageParam[] {
  const out: ChatCompletionMessageParam[] = [{ role: "system", content: system }];
  for (const m of messages) {
    if (m.role === "user") out.push({ role: "user", content: m.text });
    else if (m.role === "assistant") {
      out.push({
        role: "assistant",
        content: m.text || null,
        ...(m.toolCalls.length > 0
          ? { tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: "function" as const, function: { name: names.safe(c.name), arguments: c.invalidArgs ?? JSON.stringify(c.args) } })) }
          : {}),
      });
    } else for (const r of m.results) out.push({ role: "tool", tool_call_id: r.id, content: r.text });
  }
  return out;
}
