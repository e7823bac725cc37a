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
import { readTranscript, tasksDir } from "../agent/transcript.js";
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

  status(id: string): TaskStatus | undefined {
    return this.tasks.get(id)?.status;
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
