/**
 * The three SDK providers (openai, @anthropic-ai/sdk, ollama), unmodified,
 * against loopback servers that speak each API's wire format: a tool-call turn
 * then a final text turn, plain and streamed; key rotation on 429; a 500 as a
 * clear E_AGENT_PROVIDER; an in-flight request aborted on cancel. The requests
 * the SDKs sent are checked for the tools and tool results in that API's shape.
 */
import { afterEach, describe, expect, it } from "vitest";
import { runTask } from "../../src/agent/loop.js";
import { OpenAIProvider } from "../../src/agent/providers/openai.js";
import { AnthropicProvider } from "../../src/agent/providers/anthropic.js";
import { OllamaProvider } from "../../src/agent/providers/ollama.js";
import type { RetryPolicy } from "../../src/agent/providers/keys.js";
import type { AgentEvent, Provider, TaskResult } from "../../src/agent/types.js";
import { FakeHub, MemoryTranscript, PATH_SCHEMA, ok, startLlmServer, type LlmServer, type Recorded, type Reply } from "../helpers/agent-llm.js";
import { anthropicWire, ollamaWire, openaiWire } from "../helpers/agent-wire.js";

const FAST: RetryPolicy = { maxWaitMs: 5_000, retries: 1, baseDelayMs: 1 };
const LIMITS = { maxSteps: 5, timeoutMs: 20_000, tokenBudget: 100_000 };
const ARGS = { url: "https://example.com/a" };

interface Case {
  name: string;
  make(url: string, keys: string[], stream: boolean, retry?: RetryPolicy): Provider;
  key(req: Recorded): string | undefined;
  toolCall(stream: boolean): Reply;
  text(stream: boolean, text: string): Reply;
  error(status: number, message: string, headers?: Record<string, string>): Reply;
  /** The request carries the hub's tools in this API's shape. */
  checkTools(req: Recorded): void;
  /** The second request carries the call and its result in this API's shape. */
  checkResult(req: Recorded): void;
}

const cases: Case[] = [
  {
    name: "openai",
    make: (url, keys, stream, retry = FAST) => new OpenAIProvider({ model: "gpt-test", keys, baseUrl: `${url}/v1`, stream, retry }),
    key: (r) => r.headers.authorization?.replace(/^Bearer /, ""),
    toolCall: (s) => (s ? openaiWire.streamToolCall("call_1", "web__fetch_page", ARGS) : openaiWire.toolCall("call_1", "web__fetch_page", ARGS)),
    text: (s, t) => (s ? openaiWire.streamText(t) : openaiWire.text(t)),
    error: openaiWire.error,
    checkTools(req) {
      expect(req.url).toBe("/v1/chat/completions");
      expect(req.body.model).toBe("gpt-test");
      expect(req.body.messages[0]).toMatchObject({ role: "system" });
      expect(req.body.tools).toContainEqual({ type: "function", function: { name: "fs__read_text_file", description: "the fs__read_text_file tool", parameters: PATH_SCHEMA } });
      expect(req.body.tools.map((t: { function: { name: string } }) => t.function.name)).toContain("web__fetch_page");
    },
    checkResult(req) {
      const msgs = req.body.messages as { role: string }[];
      expect(msgs).toContainEqual(expect.objectContaining({ role: "assistant", tool_calls: [{ id: "call_1", type: "function", function: { name: "web__fetch_page", arguments: JSON.stringify(ARGS) } }] }));
      expect(msgs.at(-1)).toEqual({ role: "tool", tool_call_id: "call_1", content: "page text" });
    },
  },
  {
    name: "anthropic",
    make: (url, keys, stream, retry = FAST) => new AnthropicProvider({ model: "claude-test", keys, baseUrl: url, stream, retry }),
    // SDK 1.x sends the key as a bearer token (0.x used x-api-key).
    key: (r) => (r.headers["x-api-key"] as string | undefined) ?? r.headers.authorization?.replace(/^Bearer /, ""),
    toolCall: (s) => (s ? anthropicWire.streamToolCall("toolu_1", "web__fetch_page", ARGS) : anthropicWire.toolCall("toolu_1", "web__fetch_page", ARGS)),
    text: (s, t) => (s ? anthropicWire.streamText(t) : anthropicWire.text(t)),
    error: anthropicWire.error,
    checkTools(req) {
      expect(req.url).toBe("/v1/messages");
      expect(typeof req.body.system).toBe("string");
      expect(req.body.max_tokens).toBeGreaterThan(0);
      expect(req.body.tools).toContainEqual({ name: "fs__read_text_file", description: "the fs__read_text_file tool", input_schema: PATH_SCHEMA });
    },
    checkResult(req) {
      const msgs = req.body.messages as unknown[];
      expect(msgs[1]).toEqual({ role: "assistant", content: [{ type: "text", text: "Reading it." }, { type: "tool_use", id: "toolu_1", name: "web__fetch_page", input: ARGS }] });
      expect(msgs[2]).toEqual({ role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "page text" }] });
    },
  },
  {
    name: "ollama",
    make: (url, keys, stream, retry = FAST) => new OllamaProvider({ model: "llama-test", host: url, keys, stream, retry }),
    key: (r) => r.headers.authorization?.replace(/^Bearer /, ""),
    toolCall: (s) => (s ? ollamaWire.streamToolCall("web__fetch_page", ARGS) : ollamaWire.toolCall("web__fetch_page", ARGS)),
    text: (s, t) => (s ? ollamaWire.streamText(t) : ollamaWire.text(t)),
    error: ollamaWire.error,
    checkTools(req) {
      expect(req.url).toBe("/api/chat");
      expect(req.body.messages[0]).toMatchObject({ role: "system" });
      expect(req.body.tools).toContainEqual({ type: "function", function: { name: "fs__read_text_file", description: "the fs__read_text_file tool", parameters: PATH_SCHEMA } });
    },
    checkResult(req) {
      const msgs = req.body.messages as unknown[];
      expect(msgs).toContainEqual({ role: "assistant", content: "Reading it.", tool_calls: [{ function: { name: "web__fetch_page", arguments: ARGS } }] });
      expect(msgs.at(-1)).toEqual({ role: "tool", content: "page text", tool_name: "web__fetch_page" });
    },
  },
];

describe.each(cases)("$name provider through its SDK", (c) => {
  let server: LlmServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const hub = () => new FakeHub([{ name: "fs__read_text_file" }, { name: "web__fetch.page" }], (name) => ok(name === "web__fetch.page" ? "page text" : "?"));

  async function twoTurns(stream: boolean, keys = ["key-1"]): Promise<{ result: TaskResult; events: AgentEvent[]; fake: FakeHub; transcript: MemoryTranscript }> {
    server = await startLlmServer((_req, n) => (n === 0 ? c.toolCall(stream) : c.text(stream, "The page says hello.")));
    const fake = hub();
    const events: AgentEvent[] = [];
    const transcript = new MemoryTranscript();
    const result = await runTask({ task: "fetch the page", hub: fake, provider: c.make(server.url, keys, stream), limits: LIMITS, transcript, onEvent: (e) => events.push(e) });
    return { result, events, fake, transcript };
  }

  it("runs a tool-call turn and a final text turn, sending tools and the tool result in the API's format", async () => {
    const { result, fake } = await twoTurns(false);
    expect(result.status, result.reason).toBe("done");
    expect(result.finalText).toBe("The page says hello.");
    // The model used the mapped name; the hub got its own (dotted) name back.
    expect(fake.calls).toEqual([expect.objectContaining({ name: "web__fetch.page", args: ARGS })]);
    expect(result.usage).toEqual({ inputTokens: 250, outputTokens: 30 });
    expect(server!.requests).toHaveLength(2);
    c.checkTools(server!.requests[0]!);
    c.checkResult(server!.requests[1]!);
    expect(c.key(server!.requests[0]!)).toBe("key-1");
  });

  it("streams text deltas, and the result is the same as without streaming", async () => {
    const plain = await twoTurns(false);
    await server!.close();
    const streamed = await twoTurns(true);
    expect(streamed.result.status).toBe("done");
    expect(server!.requests[0]!.body.stream).toBe(true);
    expect(plain.result.messages.length).toBe(streamed.result.messages.length);
    const deltas = streamed.events.filter((e) => e.type === "text-delta").map((e) => (e.type === "text-delta" ? e.text : ""));
    expect(deltas.length).toBeGreaterThan(2);
    expect(deltas.join("")).toBe("Reading it.The page says hello.");
    // Same conversation, same usage (Ollama's made-up call ids aside).
    const shape = (r: TaskResult) => JSON.stringify(r.messages).replace(/ollama_[0-9a-f]{8}/g, "ID");
    expect(shape(streamed.result)).toBe(shape(plain.result));
    expect(streamed.result.usage).toEqual(plain.result.usage);
    c.checkResult(server!.requests[1]!);
  });

  it("on a 429 switches to the next key (KEY_2) and records the key index, never the key", async () => {
    server = await startLlmServer((req, n) => {
      if (c.key(req) === "key-1") return c.error(429, "slow down", { "retry-after": "30" });
      return n <= 1 ? c.toolCall(false) : c.text(false, "done");
    });
    const events: AgentEvent[] = [];
    const transcript = new MemoryTranscript();
    const result = await runTask({ task: "t", hub: hub(), provider: c.make(server.url, ["key-1", "key-2"], false), limits: LIMITS, transcript, onEvent: (e) => events.push(e) });
    expect(result.status, result.reason).toBe("done");
    // Key 1 was tried once; its Retry-After (30 s) keeps it skipped for the second request.
    expect(server.requests.map((r) => c.key(r))).toEqual(["key-1", "key-2", "key-2"]);
    expect(events.find((e) => e.type === "notice")).toMatchObject({ notice: { kind: "rate-limited", keyIndex: 1, waitMs: 0 } });
    expect(transcript.records.filter((r) => r.type === "usage").map((r) => (r.type === "usage" ? r.keyIndex : 0))).toEqual([2, 2]);
    expect(JSON.stringify(transcript.records)).not.toContain("key-2");
  });

  it("a 500 ends the task with a clear E_AGENT_PROVIDER error after the retries", async () => {
    server = await startLlmServer(() => c.error(500, "the model server fell over"));
    const result = await runTask({ task: "t", hub: hub(), provider: c.make(server.url, ["key-1"], true), limits: LIMITS, transcript: new MemoryTranscript() });
    expect(result.status).toBe("error");
    expect(result.error?.code).toBe("E_AGENT_PROVIDER");
    expect(result.reason).toMatch(/answered 500/);
    expect(result.reason).toContain("the model server fell over");
    expect(server.requests).toHaveLength(1 + FAST.retries);
  });

  it("cancelling aborts the request in flight", async () => {
    let received: () => void = () => undefined;
    const arrived = new Promise<void>((r) => (received = r));
    server = await startLlmServer(() => {
      received();
      return { hang: true };
    });
    const stop = new AbortController();
    const pending = runTask({ task: "t", hub: hub(), provider: c.make(server.url, ["key-1"], true), limits: LIMITS, transcript: new MemoryTranscript(), signal: stop.signal });
    await arrived;
    stop.abort("cancelled by test");
    const result = await pending;
    expect(result).toMatchObject({ status: "cancelled", reason: "cancelled by test", steps: 1 });
  });
});

describe("rate limits on every key", () => {
  let server: LlmServer | undefined;
  afterEach(() => server?.close());

  it("waits for Retry-After when every key is limited, then goes on", async () => {
    server = await startLlmServer((_req, n) => (n === 0 ? openaiWire.error(429, "slow down", { "retry-after": "0.05" }) : openaiWire.text("ok")));
    const events: AgentEvent[] = [];
    const provider = new OpenAIProvider({ model: "m", keys: ["only"], baseUrl: `${server.url}/v1`, stream: false, retry: FAST });
    const result = await runTask({ task: "t", hub: new FakeHub([]), provider, limits: LIMITS, transcript: new MemoryTranscript(), onEvent: (e) => events.push(e) });
    expect(result.status).toBe("done");
    expect(server.requests).toHaveLength(2);
    expect(events.find((e) => e.type === "notice")).toMatchObject({ notice: { kind: "rate-limited", waitMs: 50 } });
  });

  it("gives up with E_AGENT_RATE_LIMITED when Retry-After is past the bound", async () => {
    server = await startLlmServer(() => anthropicWire.error(429, "slow down", { "retry-after": "120" }));
    const provider = new AnthropicProvider({ model: "m", keys: ["a", "b"], baseUrl: server.url, stream: false, retry: { ...FAST, maxWaitMs: 1_000 } });
    const result = await runTask({ task: "t", hub: new FakeHub([]), provider, limits: LIMITS, transcript: new MemoryTranscript() });
    expect(result.status).toBe("error");
    expect(result.error?.code).toBe("E_AGENT_RATE_LIMITED");
    expect(result.reason).toMatch(/ANTHROPIC_API_KEY_3/);
    expect(server.requests.map((r) => r.headers.authorization)).toEqual(["Bearer a", "Bearer b"]);
  });

  it("a stream that breaks off after text reached the display is not retried (no text shown twice)", async () => {
    const partial = openaiWire.streamText("Half an answ");
    server = await startLlmServer(() => ("sse" in partial ? { sse: partial.sse.slice(0, 1), drop: true } : partial));
    const provider = new OpenAIProvider({ model: "m", keys: ["k"], baseUrl: `${server.url}/v1`, stream: true, retry: FAST });
    const events: AgentEvent[] = [];
    const result = await runTask({ task: "t", hub: new FakeHub([]), provider, limits: LIMITS, transcript: new MemoryTranscript(), onEvent: (e) => events.push(e) });
    expect(result.status).toBe("error");
    expect(result.error?.code).toBe("E_AGENT_PROVIDER");
    expect(result.reason).toMatch(/broke off while streaming/);
    expect(server.requests).toHaveLength(1);
    expect(events.filter((e) => e.type === "text-delta").map((e) => (e.type === "text-delta" ? e.text : "")).join("")).toBe("Half a");
  });

  it("a refused key is E_AGENT_AUTH naming the variable, not the key", async () => {
    server = await startLlmServer(() => openaiWire.error(401, "Incorrect API key provided"));
    const provider = new OpenAIProvider({ model: "m", keys: ["sk-secret-value"], baseUrl: `${server.url}/v1`, stream: false, retry: FAST });
    const result = await runTask({ task: "t", hub: new FakeHub([]), provider, limits: LIMITS, transcript: new MemoryTranscript() });
    expect(result.error?.code).toBe("E_AGENT_AUTH");
    expect(result.reason).toContain("OPENAI_API_KEY");
    expect(result.reason).not.toContain("sk-secret-value");
  });
});
