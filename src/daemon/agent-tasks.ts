/**
 * The daemon's TaskRunner over the agent loop: tasks run on the daemon's hub
 * (so their red calls wait in the daemon's approval queue and every call lands
 * in its audit log), each with its own AbortController so a task can be
 * cancelled alone or all together at shutdown.
 */
import type { Config } from "../config/schema.js";
import type { McpHub } from "../mcp/hub.js";
import { startTask } from "../agent/start.js";
import { chooseProvider } from "../agent/providers/choose.js";
import { PROVIDER_NAMES, type ProviderChoice } from "../agent/config.js";
import { readTranscript, tasksDir, type TranscriptRecord } from "../agent/transcript.js";
import type { AgentEvent, TaskResult } from "../agent/types.js";
import { DaemonError } from "./errors.js";
import type { TaskEvent, TaskRunner, TaskStartOptions, TaskStatus, TranscriptEntry } from "./tasks.js";

interface Entry {
  status: TaskStatus;
  abort: AbortController;
  done: Promise<TaskResult>;
}

/** Tasks kept in memory for status queries; older finished ones are forgotten (their transcripts stay on disk). */
const KEEP = 500;

export class AgentTaskRunner implements TaskRunner {
  private readonly tasks = new Map<string, Entry>();
  private readonly listeners = new Set<(e: TaskEvent) => void>();

  constructor(private readonly config: Config, private readonly hub: McpHub) {}

  async start(task: string, opts: TaskStartOptions): Promise<{ id: string }> {
    if (opts.provider !== undefined && !(PROVIDER_NAMES as readonly string[]).includes(opts.provider)) {
      throw new DaemonError("E_DAEMON_BAD_REQUEST", `Unknown provider '${opts.provider}'; use one of ${PROVIDER_NAMES.join(", ")}.`);
    }
    const provider = await chooseProvider({ config: this.config.agent, provider: opts.provider as ProviderChoice | undefined, model: opts.model });
    const abort = new AbortController();
    const started = await startTask({ config: this.config, hub: this.hub, task, provider, signal: abort.signal, onEvent: (e) => this.onAgentEvent(e) });
    const status: TaskStatus = { id: started.id, task, state: "running", provider: provider.name, model: provider.model, createdAt: new Date().toISOString(), finishedAt: null, result: null, error: null, steps: 0, client: opts.client ?? null };
    const entry: Entry = { status, abort, done: started.done };
    this.tasks.set(started.id, entry);
    this.forgetOld();
    void started.done.then((r) => this.finish(entry, r));
    return { id: started.id };
  }

  /** A task of this daemon, or one read back from its transcript (an earlier daemon's, e.g. one interrupted by a crash). */
  status(id: string): TaskStatus | undefined {
    return this.tasks.get(id)?.status ?? this.fromTranscript(id);
  }

  list(): TaskStatus[] {
    return [...this.tasks.values()].map((e) => e.status).reverse();
  }

  async cancel(id: string): Promise<boolean> {
    const entry = this.tasks.get(id);
    if (!entry || entry.status.state !== "running") return false;
    entry.abort.abort();
    await entry.done;
    return true;
  }

  async cancelAll(): Promise<void> {
    const running = [...this.tasks.values()].filter((e) => e.status.state === "running");
    for (const e of running) e.abort.abort();
    await Promise.all(running.map((e) => e.done));
  }

  transcript(id: string): TranscriptEntry[] | undefined {
    try {
      return readTranscript(id, tasksDir(this.config.audit.path)) as unknown as TranscriptEntry[];
    } catch {
      return undefined;
    }
  }

  subscribe(listener: (event: TaskEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private fromTranscript(id: string): TaskStatus | undefined {
    let records: TranscriptRecord[];
    try {
      records = readTranscript(id, tasksDir(this.config.audit.path));
    } catch {
      return undefined;
    }
    const head = records[0];
    if (head?.type !== "task") return undefined;
    const end = records.findLast((r) => r.type === "end");
    // No end and not ours: another process (a `luminaguard run`) is still writing it.
    const state: TaskStatus["state"] = !end ? "running" : end.status === "done" ? "succeeded" : end.status === "cancelled" ? "cancelled" : "failed";
    const finalText = records.findLast((r) => r.type === "message" && r.message.role === "assistant");
    return {
      id,
      task: head.task,
      state,
      provider: head.provider,
      model: head.model,
      createdAt: head.t,
      finishedAt: end?.t ?? null,
      result: state === "succeeded" && finalText?.type === "message" && finalText.message.role === "assistant" ? finalText.message.text : null,
      error: end && end.status !== "done" ? (end.error?.message ?? end.reason) : null,
      steps: end?.steps ?? 0,
      ...(end ? { status: end.status, reason: end.reason, toolCalls: end.toolCalls, denied: end.denied, usage: end.usage } : {}),
      client: null,
    };
  }

  private onAgentEvent(e: AgentEvent): void {
    const entry = this.tasks.get(e.taskId);
    if (entry && e.type === "step-start") entry.status.steps = e.step;
    // Deltas are many and small; the page shows whole steps.
    if (e.type === "text-delta") return;
    const { type, taskId, ...data } = e;
    this.publish({ type, taskId, data: data as Record<string, unknown> });
  }

  private finish(entry: Entry, r: TaskResult): void {
    const s = entry.status;
    s.state = r.status === "done" ? "succeeded" : r.status === "cancelled" ? "cancelled" : "failed";
    s.finishedAt = new Date().toISOString();
    s.result = r.status === "done" ? r.finalText : null;
    s.error = r.status === "done" ? null : r.error?.message ?? r.reason;
    Object.assign(s, { status: r.status, reason: r.reason, steps: r.steps, toolCalls: r.toolCalls, denied: r.denied, usage: r.usage });
    this.publish({ type: "finished", taskId: s.id, data: { state: s.state, reason: r.reason } });
  }

  private publish(e: TaskEvent): void {
    for (const l of this.listeners) l(e);
  }

  private forgetOld(): void {
    for (const [id, e] of this.tasks) {
      if (this.tasks.size <= KEEP) break;
      if (e.status.state !== "running") this.tasks.delete(id);
    }
  }
}
