/**
 * The loop against a stand-in hub, with the replay provider and scripted
 * providers: how each ending is reached (done, max_steps, timeout, budget,
 * cancelled, error), that denials and bad calls come back to the model as tool
 * results, and what the events and transcript records say.
 */
import { describe, expect, it } from "vitest";
import { runTask } from "../../src/agent/loop.js";
import { ReplayProvider } from "../../src/agent/providers/replay.js";
import { parseRecording } from "../../src/agent/providers/recording.js";
import type { AgentEvent, CompletionRequest, CompletionResult, Provider } from "../../src/agent/types.js";
import { McpError } from "../../src/mcp/errors.js";
import { FakeHub, MemoryTranscript, denied, ok } from "../helpers/agent-llm.js";

const LIMITS = { maxSteps: 10, timeoutMs: 10_000, tokenBudget: 1_000_000 };

const replay = (turns: unknown) => new ReplayProvider(parseRecording(turns, "test.json"));
const readTurn = (n: number) => ({ text: `step ${n}`, toolCalls: [{ name: "fs__read_text_file", args: { path: `/workspace/${n}.txt` } }] });

/** A provider that answers from a function (to hang, fail, or count). */
class ScriptProvider implements Provider {
  readonly name = "openai" as const;
  readonly model = "script";
  readonly requests: CompletionRequest[] = [];
  constructor(private readonly fn: (req: CompletionRequest, n: number) => Promise<CompletionResult>) {}
  complete(req: CompletionRequest): Promise<CompletionResult> {
    this.requests.push({ ...req, messages: structuredClone(req.messages) });
    return this.fn(req, this.requests.length - 1);
  }
}

const hang = (req: CompletionRequest): Promise<CompletionResult> =>
  new Promise((_resolve, reject) => req.signal?.addEventListener("abort", () => reject(new Error("aborted")), { once: true }));

describe("agent loop", () => {
  it("runs tool calls until the model stops, feeding each result back", async () => {
    const hub = new FakeHub([{ name: "fs__read_text_file" }], (_n, args) => ok(`contents of ${String(args.path)}`));
    const provider = new ScriptProvider(async (_req, n) =>
      n === 0
        ? { message: { role: "assistant", text: "", toolCalls: [{ id: "c1", name: "fs__read_text_file", args: { path: "/workspace/a" } }] }, usage: { inputTokens: 10, outputTokens: 5 }, stop: "tool_calls" }
        : { message: { role: "assistant", text: "It says hi.", toolCalls: [] }, usage: { inputTokens: 20, outputTokens: 5 }, stop: "end" },
    );
    const transcript = new MemoryTranscript("t1");
    const events: AgentEvent[] = [];
    const result = await runTask({ task: "read a", hub, provider, limits: LIMITS, transcript, onEvent: (e) => events.push(e) });
    expect(result).toMatchObject({ id: "t1", status: "done", steps: 2, toolCalls: 1, denied: 0, finalText: "It says hi.", usage: { inputTokens: 30, outputTokens: 10 } });
    expect(provider.requests[1]!.messages.at(-1)).toEqual({ role: "tool", results: [{ id: "c1", name: "fs__read_text_file", text: "contents of /workspace/a", isError: false }] });
    expect(provider.requests[0]!.tools).toEqual([{ name: "fs__read_text_file", description: "the fs__read_text_file tool", inputSchema: expect.objectContaining({ type: "object" }) }]);
    expect(events.map((e) => e.type)).toEqual(["task-start", "step-start", "usage", "tool-call", "tool-result", "step-start", "usage", "text", "task-end"]);
    expect(events.every((e) => e.taskId === "t1" && !e.replay)).toBe(true);
    expect(events.find((e) => e.type === "tool-call")).toMatchObject({ name: "fs__read_text_file", verdict: "green", risk: "low" });
    expect(events.find((e) => e.type === "tool-result")).toMatchObject({ ok: true, bytes: 24, outcome: { decision: "auto" } });
    expect(transcript.records.map((r) => r.type)).toEqual(["task", "message", "usage", "message", "tool-call", "tool-result", "message", "usage", "message", "end"]);
    expect(transcript.records.at(-1)).toMatchObject({ type: "end", status: "done", steps: 2, toolCalls: 1 });
  });

  it("a denial reaches the model as the tool's result and the task still ends done", async () => {
    const hub = new FakeHub([{ name: "fs__write_file", verdict: "red" }], () => denied("denied by policy: red calls need a person"));
    const provider = replay([{ toolCalls: [{ name: "fs__write_file", args: { path: "/workspace/a", content: "x" } }] }, { text: "I could not write it." }]);
    const events: AgentEvent[] = [];
    const result = await runTask({ task: "write a", hub, provider, limits: LIMITS, transcript: new MemoryTranscript(), onEvent: (e) => events.push(e) });
    expect(result).toMatchObject({ status: "done", denied: 1, finalText: "I could not write it." });
    expect(result.messages[2]).toEqual({ role: "tool", results: [{ id: "replay_1_1", name: "fs__write_file", text: "denied by policy: red calls need a person", isError: true }] });
    expect(events.find((e) => e.type === "tool-result")).toMatchObject({ ok: false, outcome: { decision: "denied" } });
    // Every event of a replay says so.
    expect(events.every((e) => e.replay === true)).toBe(true);
  });

  it("unknown tools, bad arguments and non-JSON arguments are answered as errors, not crashes", async () => {
    const hub = new FakeHub([{ name: "fs__read_text_file" }], (name) => {
      throw new McpError("E_MCP_UNKNOWN_TOOL", `MCP server 'fs' has no tool '${name}'.`);
    });
    const provider = new ScriptProvider(async (_req, n) =>
      n === 0
        ? { message: { role: "assistant", text: "", toolCalls: [{ id: "a", name: "fs__nope", args: {} }, { id: "b", name: "fs__read_text_file", args: {}, invalidArgs: "{path: oops" }] }, usage: { inputTokens: 1, outputTokens: 1 }, stop: "tool_calls" }
        : { message: { role: "assistant", text: "ok", toolCalls: [] }, usage: { inputTokens: 1, outputTokens: 1 }, stop: "end" },
    );
    const result = await runTask({ task: "t", hub, provider, limits: LIMITS, transcript: new MemoryTranscript() });
    expect(result.status).toBe("done");
    const results = provider.requests[1]!.messages.at(-1);
    expect(results).toMatchObject({ role: "tool", results: [{ id: "a", isError: true }, { id: "b", isError: true }] });
    if (results?.role === "tool") {
      expect(results.results[0]!.text).toMatch(/^E_MCP_UNKNOWN_TOOL: /);
      expect(results.results[1]!.text).toMatch(/^E_AGENT_BAD_ARGS: .*\{path: oops/);
    }
    // The non-JSON call never reached the hub.
    expect(hub.calls.map((c) => c.name)).toEqual(["fs__nope"]);
  });

  it("stops at max steps while the model keeps calling tools", async () => {
    const hub = new FakeHub([{ name: "fs__read_text_file" }]);
    const provider = replay([1, 2, 3, 4, 5].map(readTurn));
    const result = await runTask({ task: "t", hub, provider, limits: { ...LIMITS, maxSteps: 3 }, transcript: new MemoryTranscript() });
    expect(result).toMatchObject({ status: "max_steps", steps: 3, toolCalls: 3 });
    expect(result.reason).toMatch(/3 steps/);
    // The conversation stays valid: the last calls have their results.
    expect(result.messages.at(-1)?.role).toBe("tool");
  });

  it("stops when the token budget is spent, answering the pending calls as not run", async () => {
    const hub = new FakeHub([{ name: "fs__read_text_file" }]);
    const provider = replay([1, 2, 3].map((n) => ({ ...readTurn(n), usage: { inputTokens: 400, outputTokens: 100 } })));
    const result = await runTask({ task: "t", hub, provider, limits: { ...LIMITS, tokenBudget: 1000 }, transcript: new MemoryTranscript() });
    expect(result).toMatchObject({ status: "budget", steps: 2, toolCalls: 1, usage: { inputTokens: 800, outputTokens: 200 } });
    expect(hub.calls).toHaveLength(1);
    expect(result.messages.at(-1)).toMatchObject({ role: "tool", results: [{ isError: true, text: expect.stringContaining("budget") }] });
  });

  it("ends with timeout when the time limit passes, aborting the model request", async () => {
    const provider = new ScriptProvider((req) => hang(req));
    const result = await runTask({ task: "t", hub: new FakeHub([]), provider, limits: { ...LIMITS, timeoutMs: 50 }, transcript: new MemoryTranscript() });
    expect(result.status).toBe("timeout");
    expect(provider.requests[0]!.signal?.aborted).toBe(true);
  });

  it("a timeout during a tool call aborts the call and ends with timeout", async () => {
    let callSignal: AbortSignal | undefined;
    const hub = new FakeHub([{ name: "fs__read_text_file" }], (_n, _a, ctx) => {
      callSignal = ctx?.signal;
      return new Promise((resolve) => ctx?.signal?.addEventListener("abort", () => resolve(denied("E_MCP_CANCELLED: cancelled"))));
    });
    const result = await runTask({ task: "t", hub, provider: replay([readTurn(1), readTurn(2)]), limits: { ...LIMITS, timeoutMs: 50 }, transcript: new MemoryTranscript() });
    expect(result).toMatchObject({ status: "timeout", steps: 1 });
    expect(callSignal?.aborted).toBe(true);
  });

  it("cancellation ends the task with cancelled and leaves later calls of the step unrun", async () => {
    const stop = new AbortController();
    const hub = new FakeHub([{ name: "fs__read_text_file" }], () => {
      stop.abort("user pressed Ctrl-C");
      return ok("first");
    });
    const provider = replay([{ toolCalls: [{ name: "fs__read_text_file", args: { path: "a" } }, { name: "fs__read_text_file", args: { path: "b" } }] }, { text: "never" }]);
    const result = await runTask({ task: "t", hub, provider, limits: LIMITS, signal: stop.signal, transcript: new MemoryTranscript() });
    expect(result).toMatchObject({ status: "cancelled", reason: "user pressed Ctrl-C", steps: 1 });
    expect(hub.calls).toHaveLength(1);
    expect(result.messages.at(-1)).toMatchObject({ role: "tool", results: [{ text: "first" }, { text: "not run: the task was cancelled", isError: true }] });
  });

  it("a provider failure ends the task with error and its code", async () => {
    const provider = new ScriptProvider(async () => {
      throw new McpError("E_MCP_CONNECT", "nope");
    });
    const transcript = new MemoryTranscript();
    const result = await runTask({ task: "t", hub: new FakeHub([]), provider, limits: LIMITS, transcript });
    expect(result).toMatchObject({ status: "error", error: { code: "E_MCP_CONNECT", message: "nope" } });
    expect(transcript.records.at(-1)).toMatchObject({ type: "end", status: "error", error: { code: "E_MCP_CONNECT" } });
  });

  it("continues a conversation from history (chat)", async () => {
    const provider = new ScriptProvider(async () => ({ message: { role: "assistant", text: "second answer", toolCalls: [] }, usage: { inputTokens: 1, outputTokens: 1 }, stop: "end" }));
    const first = await runTask({ task: "one", hub: new FakeHub([]), provider, limits: LIMITS, transcript: new MemoryTranscript() });
    const second = await runTask({ task: "two", hub: new FakeHub([]), provider, limits: LIMITS, transcript: new MemoryTranscript(), history: first.messages });
    expect(provider.requests[1]!.messages.map((m) => (m.role === "user" ? m.text : m.role))).toEqual(["one", "assistant", "two"]);
    expect(second.messages).toHaveLength(4);
  });

  it("an event handler that throws does not break the task", async () => {
    const result = await runTask({ task: "t", hub: new FakeHub([]), provider: replay([{ text: "hi" }]), limits: LIMITS, transcript: new MemoryTranscript(), onEvent: () => { throw new Error("display broke"); } });
    expect(result.status).toBe("done");
  });
});
