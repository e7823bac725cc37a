/**
 * Recorded responses in each provider's real wire format: a tool-call turn and
 * a final text turn, plain and streamed (SSE for OpenAI and Anthropic, NDJSON
 * for Ollama), and their error bodies.
 */
import type { Reply } from "./agent-llm.js";

const created = 1_760_000_000;

export const openaiWire = {
  toolCall: (id: string, name: string, args: unknown): Reply => ({
    json: {
      id: "chatcmpl-1",
      object: "chat.completion",
      created,
      model: "gpt-test",
      choices: [{ index: 0, message: { role: "assistant", content: "Reading it.", refusal: null, tool_calls: [{ id, type: "function", function: { name, arguments: JSON.stringify(args) } }] }, finish_reason: "tool_calls", logprobs: null }],
      usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
    },
  }),
  text: (text: string): Reply => ({
    json: {
      id: "chatcmpl-2",
      object: "chat.completion",
      created,
      model: "gpt-test",
      choices: [{ index: 0, message: { role: "assistant", content: text, refusal: null }, finish_reason: "stop", logprobs: null }],
      usage: { prompt_tokens: 150, completion_tokens: 10, total_tokens: 160 },
    },
  }),
  streamToolCall: (id: string, name: string, args: unknown): Reply => {
    const argText = JSON.stringify(args);
    const chunk = (delta: unknown, finish: string | null = null, usage: unknown = undefined) => ({
      data: { id: "chatcmpl-s1", object: "chat.completion.chunk", created, model: "gpt-test", choices: delta === null ? [] : [{ index: 0, delta, finish_reason: finish, logprobs: null }], ...(usage ? { usage } : {}) },
    });
    return {
      sse: [
        chunk({ role: "assistant", content: "" }),
        chunk({ content: "Reading " }),
        chunk({ content: "it." }),
        chunk({ tool_calls: [{ index: 0, id, type: "function", function: { name, arguments: "" } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: argText.slice(0, 5) } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: argText.slice(5) } }] }),
        chunk({}, "tool_calls"),
        chunk(null, null, { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 }),
      ],
      done: true,
    };
  },
  streamText: (text: string): Reply => {
    const chunk = (delta: unknown, finish: string | null = null, usage: unknown = undefined) => ({
      data: { id: "chatcmpl-s2", object: "chat.completion.chunk", created, model: "gpt-test", choices: delta === null ? [] : [{ index: 0, delta, finish_reason: finish, logprobs: null }], ...(usage ? { usage } : {}) },
    });
    const half = Math.floor(text.length / 2);
    return { sse: [chunk({ role: "assistant", content: text.slice(0, half) }), chunk({ content: text.slice(half) }), chunk({}, "stop"), chunk(null, null, { prompt_tokens: 150, completion_tokens: 10, total_tokens: 160 })], done: true };
  },
  error: (status: number, message: string, headers: Record<string, string> = {}): Reply => ({ status, headers, json: { error: { message, type: status === 429 ? "rate_limit_exceeded" : "server_error", param: null, code: null } } }),
};

const anthropicUsage = (input: number, output: number) => ({ input_tokens: input, output_tokens: output, cache_creation_input_tokens: null, cache_read_input_tokens: null, server_tool_use: null, service_tier: "standard" });

export const anthropicWire = {
  toolCall: (id: string, name: string, input: unknown): Reply => ({
    json: { id: "msg_1", type: "message", role: "assistant", model: "claude-test", content: [{ type: "text", text: "Reading it." }, { type: "tool_use", id, name, input }], stop_reason: "tool_use", stop_sequence: null, usage: anthropicUsage(100, 20) },
  }),
  text: (text: string): Reply => ({
    json: { id: "msg_2", type: "message", role: "assistant", model: "claude-test", content: [{ type: "text", text }], stop_reason: "end_turn", stop_sequence: null, usage: anthropicUsage(150, 10) },
  }),
  streamToolCall: (id: string, name: string, input: unknown): Reply => {
    const json = JSON.stringify(input);
    return {
      sse: [
        { event: "message_start", data: { type: "message_start", message: { id: "msg_s1", type: "message", role: "assistant", model: "claude-test", content: [], stop_reason: null, stop_sequence: null, usage: anthropicUsage(100, 1) } } },
        { event: "content_block_start", data: { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } } },
        { event: "content_block_delta", data: { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Reading " } } },
        { event: "content_block_delta", data: { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "it." } } },
        { event: "content_block_stop", data: { type: "content_block_stop", index: 0 } },
        { event: "content_block_start", data: { type: "content_block_start", index: 1, content_block: { type: "tool_use", id, name, input: {} } } },
        { event: "content_block_delta", data: { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: json.slice(0, 5) } } },
        { event: "content_block_delta", data: { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: json.slice(5) } } },
        { event: "content_block_stop", data: { type: "content_block_stop", index: 1 } },
        { event: "message_delta", data: { type: "message_delta", delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 20 } } },
        { event: "message_stop", data: { type: "message_stop" } },
      ],
    };
  },
  streamText: (text: string): Reply => {
    const half = Math.floor(text.length / 2);
    return {
      sse: [
        { event: "message_start", data: { type: "message_start", message: { id: "msg_s2", type: "message", role: "assistant", model: "claude-test", content: [], stop_reason: null, stop_sequence: null, usage: anthropicUsage(150, 1) } } },
        { event: "content_block_start", data: { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } } },
        { event: "content_block_delta", data: { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: text.slice(0, half) } } },
        { event: "content_block_delta", data: { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: text.slice(half) } } },
        { event: "content_block_stop", data: { type: "content_block_stop", index: 0 } },
        { event: "message_delta", data: { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 10 } } },
        { event: "message_stop", data: { type: "message_stop" } },
      ],
    };
  },
  error: (status: number, message: string, headers: Record<string, string> = {}): Reply => ({ status, headers, json: { type: "error", error: { type: status === 429 ? "rate_limit_error" : "api_error", message } } }),
};

const ollamaDone = (input: number, output: number) => ({ done: true, done_reason: "stop", total_duration: 1000, load_duration: 10, prompt_eval_count: input, prompt_eval_duration: 100, eval_count: output, eval_duration: 100 });
const at = "2026-01-01T00:00:00Z";

export const ollamaWire = {
  toolCall: (name: string, args: unknown): Reply => ({ json: { model: "llama-test", created_at: at, message: { role: "assistant", content: "Reading it.", tool_calls: [{ function: { name, arguments: args } }] }, ...ollamaDone(100, 20) } }),
  text: (text: string): Reply => ({ json: { model: "llama-test", created_at: at, message: { role: "assistant", content: text }, ...ollamaDone(150, 10) } }),
  streamToolCall: (name: string, args: unknown): Reply => ({
    ndjson: [
      { model: "llama-test", created_at: at, message: { role: "assistant", content: "Reading " }, done: false },
      { model: "llama-test", created_at: at, message: { role: "assistant", content: "it." }, done: false },
      { model: "llama-test", created_at: at, message: { role: "assistant", content: "", tool_calls: [{ function: { name, arguments: args } }] }, done: false },
      { model: "llama-test", created_at: at, message: { role: "assistant", content: "" }, ...ollamaDone(100, 20) },
    ],
  }),
  streamText: (text: string): Reply => {
    const half = Math.floor(text.length / 2);
    return {
      ndjson: [
        { model: "llama-test", created_at: at, message: { role: "assistant", content: text.slice(0, half) }, done: false },
        { model: "llama-test", created_at: at, message: { role: "assistant", content: text.slice(half) }, done: false },
        { model: "llama-test", created_at: at, message: { role: "assistant", content: "" }, ...ollamaDone(150, 10) },
      ],
    };
  },
  error: (status: number, message: string, headers: Record<string, string> = {}): Reply => ({ status, headers, json: { error: message } }),
};
