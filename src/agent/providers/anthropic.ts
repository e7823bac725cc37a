/**
 * Anthropic's Messages API through the official SDK: `tools`, `tool_use` and
 * `tool_result` blocks, streaming through the SDK's MessageStream.
 */
import Anthropic, { APIConnectionError, APIError, APIUserAbortError } from "@anthropic-ai/sdk";
import type { ContentBlockParam, Message, MessageCreateParamsBase, MessageParam, Tool } from "@anthropic-ai/sdk/resources/messages";
import type { AgentMessage, CompletionRequest, CompletionResult, Provider, ToolCallRequest } from "../types.js";
import { ToolNameMap } from "../tool-names.js";
import { DEFAULT_RETRY, KeyRing, type RetryPolicy } from "./keys.js";
import { StreamGuard, objectArgs, sdkFailure } from "./shared.js";

export interface AnthropicProviderOptions {
  model: string;
  /** ANTHROPIC_API_KEY, then ANTHROPIC_API_KEY_2, … */
  keys: string[];
  baseUrl?: string | undefined;
  stream?: boolean | undefined;
  retry?: RetryPolicy | undefined;
  /** Anthropic requires a cap on every reply. */
  defaultMaxTokens?: number | undefined;
}

const DEFAULT_BASE = "https://api.anthropic.com";
const ERRORS = { api: APIError, connection: APIConnectionError, abort: APIUserAbortError };

/** Claude models over the Messages API. */
export class AnthropicProvider implements Provider {
  readonly name = "anthropic";
  readonly model: string;
  private readonly ring: KeyRing;
  private readonly clients = new Map<string, Anthropic>();
  private readonly baseUrl: string;
  private readonly stream: boolean;
  private readonly defaultMaxTokens: number;

  constructor(opts: AnthropicProviderOptions) {
    this.model = opts.model;
    this.baseUrl = opts.baseUrl ?? DEFAULT_BASE;
    this.stream = opts.stream ?? true;
    this.defaultMaxTokens = opts.defaultMaxTokens ?? 4096;
    this.ring = new KeyRing(opts.keys, { label: "Anthropic", variable: "ANTHROPIC_API_KEY", where: this.baseUrl, retry: opts.retry ?? DEFAULT_RETRY });
  }

  async complete(req: CompletionRequest): Promise<CompletionResult> {
    const names = new ToolNameMap(req.tools.map((t) => t.name));
    const body: MessageCreateParamsBase = {
      model: this.model,
      max_tokens: req.maxTokens ?? this.defaultMaxTokens,
      system: req.system,
      messages: toAnthropic(req.messages, names),
      ...(req.tools.length > 0 ? { tools: req.tools.map((t): Tool => ({ name: names.safe(t.name), description: t.description, input_schema: t.inputSchema as Tool.InputSchema })) } : {}),
    };
    const { value, keyIndex } = await this.ring.run(
      async (key, signal) => fromMessage(this.stream ? await this.streamed(this.client(key), body, req, signal) : await this.client(key).messages.create({ ...body, stream: false }, { signal }), names),
      (err) => sdkFailure(err, ERRORS),
      req.signal,
      req.onNotice,
    );
    return { ...value, keyIndex };
  }

  private client(key: string | undefined): Anthropic {
    const k = key ?? "";
    let c = this.clients.get(k);
    if (!c) {
      // Retries are ours (KeyRing): the SDK's own would keep hammering a rate-limited key.
      c = new Anthropic({ apiKey: k, baseURL: this.baseUrl, maxRetries: 0, logLevel: "off" });
      this.clients.set(k, c);
    }
    return c;
  }

  private async streamed(client: Anthropic, body: MessageCreateParamsBase, req: CompletionRequest, signal: AbortSignal | undefined): Promise<Message> {
    const guard = new StreamGuard("Anthropic");
    try {
      const stream = client.messages.stream(body, { signal });
      stream.on("text", (delta) => guard.text(delta, req.onText));
      return await stream.finalMessage();
    } catch (err) {
      return guard.fail(err, signal);
    }
  }
}

function fromMessage(msg: Message, names: ToolNameMap): Omit<CompletionResult, "keyIndex"> {
  let text = "";
  const calls: ToolCallRequest[] = [];
  for (const block of msg.content) {
    if (block.type === "text") text += block.text;
    else if (block.type === "tool_use") calls.push({ id: block.id, name: names.hub(block.name), ...objectArgs(block.input) });
  }
  const u = msg.usage;
  return {
    message: { role: "assistant", text, toolCalls: calls },
    // Cached prompt tokens are still prompt tokens the task spent.
    usage: { inputTokens: (u?.input_tokens ?? 0) + (u?.cache_creation_input_tokens ?? 0) + (u?.cache_read_input_tokens ?? 0), outputTokens: u?.output_tokens ?? 0 },
    stop: calls.length > 0 ? "tool_calls" : msg.stop_reason === "max_tokens" ? "max_tokens" : "end",
  };
}

/** Our conversation in Anthropic's shape: tool results are `tool_result` blocks in a user turn. */
export function toAnthropic(messages: AgentMessage[], names: ToolNameMap): MessageParam[] {
  const out: MessageParam[] = [];
  // Consecutive user turns (tool results, then the next chat line) are merged into one.
  const user = (blocks: ContentBlockParam[]): void => {
    const last = out.at(-1);
    if (last?.role === "user" && Array.isArray(last.content)) last.content.push(...blocks);
    else out.push({ role: "user", content: blocks });
  };
  for (const m of messages) {
    if (m.role === "user") user([{ type: "text", text: m.text }]);
    else if (m.role === "tool") user(m.results.map((r) => ({ type: "tool_result", tool_use_id: r.id, content: r.text, ...(r.isError ? { is_error: true } : {}) })));
    else {
      const content: ContentBlockParam[] = [];
      if (m.text) content.push({ type: "text", text: m.text });
      for (const c of m.toolCalls) content.push({ type: "tool_use", id: c.id, name: names.safe(c.name), input: c.args });
      // The API refuses an empty assistant turn.
      if (content.length === 0) content.push({ type: "text", text: "(no reply)" });
      out.push({ role: "assistant", content });
    }
  }
  return out;
}
