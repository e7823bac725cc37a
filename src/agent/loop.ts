/**
 * The agent loop: the task goes to the model with the hub's tools; each tool
 * call goes through `hub.call` (sandbox, Approval Cliff, audit) and its result
 * back to the model, until the model stops calling tools or a limit ends the
 * task (max steps, timeout, token budget, cancellation). Nothing here writes to
 * stdout or exits: the CLI and the daemon follow it through `onEvent`.
 */
import type { Approver } from "../approval/types.js";
import type { HubTool, McpHub } from "../mcp/hub.js";
import { LuminaError, hasCode } from "../errors.js";
import { DEFAULT_SYSTEM_PROMPT } from "./prompt.js";
import { resultOutcome, resultText, summarize } from "./tool-results.js";
import type { TranscriptSink } from "./transcript.js";
import type { AgentEvent, AgentMessage, Provider, TaskLimits, TaskResult, TaskStatus, ToolCallRequest, ToolOutcome, ToolResultPart, ToolSpec, Usage } from "./types.js";

/** The part of the hub the loop uses (a McpHub, or a stand-in in tests). */
export type AgentHub = Pick<McpHub, "tools" | "call">;

export interface RunTaskOptions {
  task: string;
  hub: AgentHub;
  provider: Provider;
  limits: TaskLimits;
  /** Aborting it cancels the task: the model request and the tool call in flight are aborted. */
  signal?: AbortSignal | undefined;
  /** Who approves red calls for this task (default the hub's approver). */
  approver?: Approver | undefined;
  onEvent?: ((e: AgentEvent) => void) | undefined;
  /** Where the task is recorded; its id is the task's id. */
  transcript: TranscriptSink;
  /** Replaces the built-in system prompt. */
  system?: string | undefined;
  /** Earlier turns of a conversation (chat); the task is the next user message. */
  history?: AgentMessage[] | undefined;
  /** The most tokens one model reply may have. */
  maxOutputTokens?: number | undefined;
}

const TIMEOUT = Symbol("task timeout");

/** Run one task to its end. Never throws for what happens during the task: the status says how it ended. */
export async function runTask(opts: RunTaskOptions): Promise<TaskResult> {
  return new Task(opts).run();
}

class Task {
  private readonly id: string;
  private readonly timeout = new AbortController();
  private readonly signal: AbortSignal;
  private readonly messages: AgentMessage[];
  private readonly usage: Usage = { inputTokens: 0, outputTokens: 0 };
  private readonly classes = new Map<string, HubTool["classification"]>();
  private steps = 0;
  private denied = 0;
  private toolCalls = 0;
  private finalText = "";

  constructor(private readonly opts: RunTaskOptions) {
    this.id = opts.transcript.id;
    this.signal = opts.signal ? AbortSignal.any([opts.signal, this.timeout.signal]) : this.timeout.signal;
    this.messages = [...(opts.history ?? []), { role: "user", text: opts.task }];
  }

  async run(): Promise<TaskResult> {
    const { provider, limits, transcript } = this.opts;
    const timer = setTimeout(() => this.timeout.abort(TIMEOUT), limits.timeoutMs);
    try {
      const tools = this.toolSpecs();
      const system = this.opts.system ?? DEFAULT_SYSTEM_PROMPT;
      transcript.write({ type: "task", id: this.id, task: this.opts.task, provider: provider.name, model: provider.model, limits, system, tools: tools.map((t) => t.name), history: this.opts.history?.length ?? 0 });
      transcript.write({ type: "message", step: 0, message: this.messages.at(-1)! });
      this.emit({ type: "task-start", task: this.opts.task, provider: provider.name, model: provider.model, tools: tools.length });
      for (;;) {
        if (this.signal.aborted) return this.aborted();
        if (this.total() >= limits.tokenBudget) return this.end("budget", `the token budget (${limits.tokenBudget}) is spent`);
        if (this.steps >= limits.maxSteps) return this.end("max_steps", `stopped after ${this.steps} steps (the limit) while the model was still calling tools`);
        const step = ++this.steps;
        this.emit({ type: "step-start", step });
        let reply;
        try {
          reply = await provider.complete({
            system,
            messages: this.messages,
            tools,
            signal: this.signal,
            maxTokens: this.opts.maxOutputTokens,
            onText: (text) => this.emit({ type: "text-delta", step, text }),
            onNotice: (notice) => {
              transcript.write({ type: "notice", step, notice });
              this.emit({ type: "notice", step, notice });
            },
          });
        } catch (err) {
          if (this.signal.aborted) return this.aborted();
          return this.end("error", (err as Error).message ?? String(err), err);
        }
        this.usage.inputTokens += reply.usage.inputTokens;
        this.usage.outputTokens += reply.usage.outputTokens;
        transcript.write({ type: "usage", step, usage: reply.usage, total: { ...this.usage }, keyIndex: reply.keyIndex ?? null });
        this.emit({ type: "usage", step, usage: reply.usage, total: { ...this.usage }, keyIndex: reply.keyIndex ?? null });
        const msg = reply.message;
        this.messages.push(msg);
        transcript.write({ type: "message", step, message: msg });
        if (msg.text) {
          this.finalText = msg.text;
          this.emit({ type: "text", step, text: msg.text });
        }
        if (msg.toolCalls.length === 0) {
          return this.end("done", reply.stop === "max_tokens" ? "the model's reply was cut at the output token limit" : "the model finished");
        }
        // Every call gets a result, even unrun ones, so the conversation stays valid for the next turn (chat).
        if (this.total() >= limits.tokenBudget) {
          this.answer(step, msg.toolCalls.map((c) => notRun(c, "not run: the task's token budget is spent")));
          return this.end("budget", `the token budget (${limits.tokenBudget}) is spent (${this.total()} tokens used)`);
        }
        const results: ToolResultPart[] = [];
        for (const call of msg.toolCalls) {
          results.push(this.signal.aborted ? notRun(call, "not run: the task was cancelled") : await this.callTool(step, call));
        }
        this.answer(step, results);
      }
    } catch (err) {
      // Only a broken hub (closed under us) or transcript gets here.
      return this.end("error", (err as Error).message ?? String(err), err);
    } finally {
      clearTimeout(timer);
    }
  }

  private toolSpecs(): ToolSpec[] {
    return this.opts.hub.tools().map((t) => {
      this.classes.set(t.name, t.classification);
      return { name: t.name, description: t.definition.description ?? t.definition.title ?? t.name, inputSchema: t.definition.inputSchema as Record<string, unknown> };
    });
  }

  private async callTool(step: number, call: ToolCallRequest): Promise<ToolResultPart> {
    this.toolCalls++;
    const cls = this.classes.get(call.name);
    this.opts.transcript.write({ type: "tool-call", step, id: call.id, name: call.name, args: call.args, verdict: cls?.verdict ?? null });
    this.emit({ type: "tool-call", step, id: call.id, name: call.name, args: call.args, verdict: cls?.verdict ?? null, risk: cls?.risk ?? null, reason: cls?.reason ?? null });
    let text: string;
    let isError: boolean;
    let outcome: ToolOutcome | null = null;
    let bytes = 0;
    if (call.invalidArgs !== undefined) {
      text = `E_AGENT_BAD_ARGS: the arguments were not a JSON object (${call.invalidArgs.slice(0, 200)}). Call ${call.name} again with a JSON object.`;
      isError = true;
    } else {
      try {
        const r = await this.opts.hub.call(call.name, call.args, { signal: this.signal, approver: this.opts.approver, session: this.id });
        text = resultText(r);
        isError = r.isError === true;
        outcome = resultOutcome(r);
        bytes = Buffer.byteLength(text);
      } catch (err) {
        // A closed hub cannot run anything more; an unknown tool or bad arguments is the model's to fix.
        if (hasCode(err, "E_MCP_CLOSED")) throw err;
        text = err instanceof LuminaError ? `${err.code}: ${err.message}` : `E_AGENT_TOOL: ${(err as Error).message ?? String(err)}`;
        isError = true;
      }
    }
    if (outcome?.decision === "denied") this.denied++;
    const summary = summarize(text);
    this.opts.transcript.write({ type: "tool-result", step, id: call.id, name: call.name, ok: !isError, bytes, outcome, summary });
    this.emit({ type: "tool-result", step, id: call.id, name: call.name, ok: !isError, bytes, outcome, summary });
    return { id: call.id, name: call.name, text, isError };
  }

  private answer(step: number, results: ToolResultPart[]): void {
    const msg: AgentMessage = { role: "tool", results };
    this.messages.push(msg);
    this.opts.transcript.write({ type: "message", step, message: msg });
  }

  private total(): number {
    return this.usage.inputTokens + this.usage.outputTokens;
  }

  private aborted(): TaskResult {
    if (this.signal.reason === TIMEOUT) return this.end("timeout", `no result within ${Math.round(this.opts.limits.timeoutMs / 1000)} s (the task's time limit)`);
    const why = this.opts.signal?.reason;
    return this.end("cancelled", typeof why === "string" ? why : "cancelled");
  }

  private end(status: TaskStatus, reason: string, err?: unknown): TaskResult {
    const error = status === "error" ? { code: err instanceof LuminaError ? err.code : "E_AGENT", message: reason } : undefined;
    const usage = { ...this.usage };
    try {
      this.opts.transcript.write({ type: "end", status, reason, steps: this.steps, usage, denied: this.denied, toolCalls: this.toolCalls, error: error ?? null });
    } catch {
      // The end must still reach the caller when the disk is full.
    }
    this.emit({ type: "task-end", status, reason, steps: this.steps, usage });
    return { id: this.id, status, reason, steps: this.steps, usage, finalText: this.finalText, messages: this.messages, denied: this.denied, toolCalls: this.toolCalls, error, transcriptPath: this.opts.transcript.path };
  }

  private emit(e: DistributiveOmit<AgentEvent, "taskId" | "replay">): void {
    try {
      this.opts.onEvent?.({ taskId: this.id, ...(this.opts.provider.name === "replay" ? { replay: true as const } : {}), ...e } as AgentEvent);
    } catch {
      // A broken display must not break the task.
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function notRun(call: ToolCallRequest, text: string): ToolResultPart {
  return { id: call.id, name: call.name, text, isError: true };
}
