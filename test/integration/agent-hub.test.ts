/**
 * The agent loop against a real hub: @modelcontextprotocol/server-filesystem
 * in a namespace sandbox, driven by the replay provider (the built-in sample)
 * and by the OpenAI SDK against a loopback server. Green reads run at once, the
 * red edit goes to the approver, a denial reaches the model as a tool result,
 * each limit ends the task with its status, the transcript has every step, and
 * nothing is left running afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { McpHub } from "../../src/mcp/hub.js";
import { parseConfig } from "../../src/config/load.js";
import type { Sandbox } from "../../src/sandbox/types.js";
import type { Approver, Decision, DiffCard } from "../../src/approval/types.js";
import { runTask } from "../../src/agent/loop.js";
import { ReplayProvider } from "../../src/agent/providers/replay.js";
import { OpenAIProvider } from "../../src/agent/providers/openai.js";
import { loadRecording, parseRecording } from "../../src/agent/providers/recording.js";
import { TranscriptWriter, newTaskId, readTranscript } from "../../src/agent/transcript.js";
import type { AgentEvent, TaskLimits } from "../../src/agent/types.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { namespaceLeftovers } from "../helpers/leftovers.js";
import { RecordingSandboxes, stageMcpServers, type StagedServers } from "../helpers/mcp-servers.js";
import { MemoryAudit, ScriptedApprover } from "../helpers/mcp-hub.js";
import { MemoryTranscript, startLlmServer, type LlmServer } from "../helpers/agent-llm.js";
import { openaiWire } from "../helpers/agent-wire.js";

const skip = namespaceSkipReason();
announceSkip("agent loop with server-filesystem in a sandbox", skip);

const LIMITS: TaskLimits = { maxSteps: 10, timeoutMs: 30_000, tokenBudget: 1_000_000 };
const README = "# Demo\n\nThis is teh demo.\n";
const decode = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Never answers; resolves (denied) only when the call is aborted, as approvers must. */
class WaitingApprover implements Approver {
  readonly name = "waiting";
  asked = 0;
  onAsk: (() => void) | undefined;
  decide(card: DiffCard, opts: { signal?: AbortSignal | undefined }): Promise<Decision> {
    this.asked++;
    this.onAsk?.();
    const deny = { approved: false, by: "aborted", reason: "denied: aborted", hash: card.hash };
    if (opts.signal?.aborted) return Promise.resolve(deny);
    return new Promise((resolve) => opts.signal?.addEventListener("abort", () => resolve(deny), { once: true }));
  }
}

describe.skipIf(skip)("agent loop with a real hub", () => {
  let staged: StagedServers;
  let hub: McpHub;
  let sandboxes: RecordingSandboxes;
  let sandbox: Sandbox;
  let dir: string;
  const approver = new ScriptedApprover();
  const audit = new MemoryAudit();
  const sessionId = newTaskId();

  beforeAll(async () => {
    staged = await stageMcpServers(["filesystem"]);
    dir = await mkdtemp(join(tmpdir(), "lg-agent-hub-"));
    sandboxes = new RecordingSandboxes();
    const config = parseConfig({ mcp: { servers: { fs: { command: staged.node, args: ["/opt/mcp/filesystem.mjs", "/workspace"], sandbox: { mounts: [staged.mount], limits: { memory: "384M" } } } } } });
    hub = new McpHub({ config: config.mcp, gate: { rules: [], workspaceRoots: ["/workspace"], timeoutMs: 10_000, approver }, audit, sandboxes, session: sessionId });
    await hub.start();
    expect(hub.status()[0]).toMatchObject({ name: "fs", state: "ready" });
    sandbox = sandboxes.made[0]!;
  }, 60_000);

  afterAll(async () => {
    await hub?.close();
    expect(await namespaceLeftovers(sandboxes?.ids() ?? [])).toEqual([]);
    await staged?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const reset = () => sandbox.files.write("/workspace/README.md", README);

  it("replays the sample: reads run, the denied edit reaches the model, the task ends done, the transcript has every step", async () => {
    await reset();
    approver.answers.push(false);
    const asked = approver.cards.length;
    const transcript = TranscriptWriter.create(join(dir, "tasks"), { id: sessionId });
    const events: AgentEvent[] = [];
    const result = await runTask({ task: "Fix the typo in README.md", hub, provider: new ReplayProvider(loadRecording("sample:fs-edit")), limits: LIMITS, transcript, onEvent: (e) => events.push(e) });
    transcript.close();
    expect(result).toMatchObject({ status: "done", steps: 4, toolCalls: 3, denied: 1 });
    // Only the edit went to the approver, with a diff of the real file.
    expect(approver.cards.length).toBe(asked + 1);
    const card = approver.cards.at(-1)!;
    expect(card.tool).toBe("edit_file");
    if (card.body.kind === "file-write") expect(card.body.diff).toMatch(/-This is teh demo\.\n\+This is the demo\./);
    expect(decode(await sandbox.files.read("/workspace/README.md"))).toBe(README);
    // The model got the live results: the listing, the file, the denial.
    const tool = result.messages.filter((m) => m.role === "tool").map((m) => (m.role === "tool" ? m.results[0]! : undefined));
    expect(tool[0]!.text).toContain("README.md");
    expect(tool[1]!.text).toBe(README);
    expect(tool[2]).toMatchObject({ isError: true, text: expect.stringContaining("denied") });
    expect(events.filter((e) => e.type === "tool-call").map((e) => (e.type === "tool-call" ? `${e.name}:${e.verdict}` : ""))).toEqual(["fs__list_directory:green", "fs__read_text_file:green", "fs__edit_file:red"]);
    expect(events.every((e) => e.replay)).toBe(true);
    const records = readTranscript(sessionId, join(dir, "tasks"));
    expect(records.filter((r) => r.type === "tool-call")).toHaveLength(3);
    expect(records.filter((r) => r.type === "tool-result").map((r) => (r.type === "tool-result" ? r.outcome?.decision : null))).toEqual(["auto", "auto", "denied"]);
    expect(records.filter((r) => r.type === "message")).toHaveLength(1 + 4 + 3);
    expect(records.at(-1)).toMatchObject({ type: "end", status: "done", denied: 1 });
    // The audit rows carry the task id as their session.
    expect(audit.rows.slice(-3).map((r) => [r.tool, r.decision, r.session])).toEqual([
      ["list_directory", "auto", sessionId],
      ["read_text_file", "auto", sessionId],
      ["edit_file", "denied", sessionId],
    ]);
  }, 60_000);

  it("an approved edit changes the file", async () => {
    await reset();
    approver.answers.push(true);
    const result = await runTask({ task: "Fix the typo", hub, provider: new ReplayProvider(loadRecording("sample:fs-edit")), limits: LIMITS, transcript: new MemoryTranscript() });
    expect(result).toMatchObject({ status: "done", denied: 0 });
    expect(decode(await sandbox.files.read("/workspace/README.md"))).toBe("# Demo\n\nThis is the demo.\n");
  }, 60_000);

  describe("with the OpenAI SDK against a loopback server", () => {
    let llm: LlmServer;
    afterAll(() => llm?.close());

    it("feeds the real tool results back to the model in OpenAI's format", async () => {
      await reset();
      llm = await startLlmServer((_req, n) => (n === 0 ? openaiWire.streamToolCall("call_a", "fs__read_text_file", { path: "/workspace/README.md" }) : openaiWire.streamText("It has a typo.")));
      const provider = new OpenAIProvider({ model: "gpt-test", keys: ["k"], baseUrl: `${llm.url}/v1`, stream: true });
      const result = await runTask({ task: "What does README.md say?", hub, provider, limits: LIMITS, transcript: new MemoryTranscript() });
      expect(result).toMatchObject({ status: "done", finalText: "It has a typo." });
      const tools = llm.requests[0]!.body.tools.map((t: { function: { name: string } }) => t.function.name) as string[];
      expect(tools).toEqual(expect.arrayContaining(["fs__read_text_file", "fs__edit_file", "fs__list_directory"]));
      expect(llm.requests[1]!.body.messages.at(-1)).toEqual({ role: "tool", tool_call_id: "call_a", content: README });
    }, 60_000);
  });

  it("max steps: stops a model that keeps reading", async () => {
    const turns = Array.from({ length: 6 }, () => ({ toolCalls: [{ name: "fs__list_directory", args: { path: "/workspace" } }] }));
    const result = await runTask({ task: "t", hub, provider: new ReplayProvider(parseRecording(turns, "loop.json")), limits: { ...LIMITS, maxSteps: 2 }, transcript: new MemoryTranscript() });
    expect(result).toMatchObject({ status: "max_steps", steps: 2, toolCalls: 2 });
  }, 60_000);

  it("token budget: stops once the recorded usage passes it", async () => {
    const turns = Array.from({ length: 4 }, () => ({ toolCalls: [{ name: "fs__list_directory", args: { path: "/workspace" } }], usage: { inputTokens: 300, outputTokens: 50 } }));
    const result = await runTask({ task: "t", hub, provider: new ReplayProvider(parseRecording(turns, "b.json")), limits: { ...LIMITS, tokenBudget: 600 }, transcript: new MemoryTranscript() });
    expect(result).toMatchObject({ status: "budget", steps: 2, toolCalls: 1 });
  }, 60_000);

  it("timeout: a red call waiting for a person is given up when the task's time is over", async () => {
    await reset();
    const waiting = new WaitingApprover();
    const edit = [{ toolCalls: [{ name: "fs__write_file", args: { path: "/workspace/README.md", content: "gone\n" } }] }, { text: "never" }];
    const result = await runTask({ task: "t", hub, provider: new ReplayProvider(parseRecording(edit, "w.json")), approver: waiting, limits: { ...LIMITS, timeoutMs: 1_500 }, transcript: new MemoryTranscript() });
    expect(result).toMatchObject({ status: "timeout", steps: 1 });
    expect(waiting.asked).toBe(1);
    expect(decode(await sandbox.files.read("/workspace/README.md"))).toBe(README);
  }, 60_000);

  it("cancellation during an approval: status cancelled, nothing written", async () => {
    await reset();
    const stop = new AbortController();
    const waiting = new WaitingApprover();
    // Ctrl-C while the person is still looking at the card.
    waiting.onAsk = () => setTimeout(() => stop.abort("cancelled by test"), 20);
    const edit = [{ toolCalls: [{ name: "fs__write_file", args: { path: "/workspace/README.md", content: "gone\n" } }] }, { text: "never" }];
    const result = await runTask({ task: "t", hub, provider: new ReplayProvider(parseRecording(edit, "c.json")), approver: waiting, signal: stop.signal, limits: LIMITS, transcript: new MemoryTranscript() });
    expect(result).toMatchObject({ status: "cancelled", reason: "cancelled by test" });
    expect(decode(await sandbox.files.read("/workspace/README.md"))).toBe(README);
  }, 60_000);
});
