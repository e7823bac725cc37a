/**
 * `luminaguard run` when a daemon is running: the task starts on the daemon
 * (POST /v1/tasks) and is followed on its event stream, shown with the same
 * AgentDisplay as an embedded run. Red calls of this task are asked on this
 * terminal (y/n, answered through the API) or, without one, announced with the
 * command that approves them. Ctrl-C cancels the task on the daemon.
 */
import type { AgentEvent, TaskResult, TaskStatus as AgentStatus, Usage } from "../agent/types.js";
import { CardAsker } from "./card-asker.js";
import { tasksDir } from "../agent/transcript.js";
import type { Config } from "../config/schema.js";
import type { DaemonClient, SseEvent } from "../daemon/client.js";
import { DaemonError } from "../daemon/errors.js";
import type { TaskStatus } from "../daemon/tasks.js";
import { AgentDisplay } from "./agent-display.js";
import type { AskTerminal } from "./daemon-approvals.js";
import { EXIT, printError } from "./output.js";
import { style } from "./style.js";

/** Exit status of a cancelled task (the shell's 128 + SIGINT). */
const EXIT_CANCELLED = 130;

/** What following a task on the daemon needs. */
export interface DaemonRunOptions {
  client: DaemonClient;
  config: Config;
  task: string;
  provider?: string | undefined;
  model?: string | undefined;
  json: boolean;
  /** Where to ask approvals; undefined prints how to approve elsewhere. */
  terminal: AskTerminal | undefined;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

/** Start the task on the daemon and follow it to the end; resolves with the exit code. */
export async function runOnDaemon(o: DaemonRunOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const err = o.err ?? process.stderr;
  const display = new AgentDisplay(out, o.json);
  const stop = new AbortController();
  let taskId: string | undefined;
  const early: SseEvent[] = [];
  let finish!: (data: Record<string, unknown>) => void;
  const finished = new Promise<Record<string, unknown>>((resolve) => (finish = resolve));
  const asker = new CardAsker({ client: o.client, terminal: o.terminal, tcp: o.config.daemon.tcp, command: "`luminaguard run`", err, beforeWrite: () => display.endLine() });

  const handle = (e: SseEvent): void => {
    if (taskId === undefined) return void early.push(e);
    const d = e.data;
    if (e.type.startsWith("approval.")) {
      if (d.session !== taskId) return;
      if (e.type === "approval.added") asker.added(String(d.id));
      else if (e.type === "approval.decided") asker.decided(String(d.id), d.decision as { approved?: boolean; by?: string } | undefined);
      return;
    }
    if (d.taskId !== taskId) return;
    if (e.type === "task.finished") return finish(d);
    const { time: _time, ...rest } = d;
    display.onEvent({ ...rest, type: e.type.slice("task.".length), taskId } as AgentEvent);
  };

  // Listen before starting: the task's first events (and a fast task's end) must not be missed.
  let opened!: () => void;
  const open = new Promise<void>((resolve) => (opened = resolve));
  const streaming = o.client.stream("/v1/events?types=task.*,approval.*", handle, stop.signal, { onOpen: opened });
  const streamEnded = streaming.then(() => {
    throw new DaemonError("E_DAEMON_STREAM_CLOSED", "The daemon's event stream ended before the task finished.");
  });
  let cancelling = false;
  const onSigint = (): void => {
    if (cancelling) process.exit(EXIT_CANCELLED);
    cancelling = true;
    display.endLine();
    if (taskId === undefined) {
      err.write("luminaguard: cancelled before the task started\n");
      process.exit(EXIT_CANCELLED);
    }
    err.write(`luminaguard: cancelling task ${taskId} on the daemon (Ctrl-C again to stop following at once; the daemon still cancels it)\n`);
    asker.stop();
    o.client.json("POST", `/v1/tasks/${encodeURIComponent(taskId)}/cancel`).catch((e: unknown) => printError(e));
  };
  process.on("SIGINT", onSigint);
  try {
    await Promise.race([open, streamEnded]);
    const started = await o.client.json<{ id: string }>("POST", "/v1/tasks", { task: o.task, ...(o.provider ? { provider: o.provider } : {}), ...(o.model ? { model: o.model } : {}) });
    taskId = started.id;
    if (!o.json) err.write(style.dim(`luminaguard: task ${taskId} runs on the daemon (${o.client.socketPath})\n`));
    for (const e of early.splice(0)) handle(e);
    const end = await Promise.race([finished, streamEnded]);
    asker.stop();
    const result = await resultOf(o.client, taskId, end, o.config);
    display.result(result.task, result.replay);
    if (result.task.status === "error" && !result.task.error && result.error) err.write(`luminaguard: ${result.error}\n`);
    return result.task.status === "done" ? EXIT.ok : result.task.status === "cancelled" || cancelling ? EXIT_CANCELLED : EXIT.failure;
  } catch (e) {
    if (e instanceof DaemonError && e.code === "E_DAEMON_STREAM_CLOSED" && taskId !== undefined) {
      throw new DaemonError("E_DAEMON_STREAM_CLOSED", `The daemon stopped before task ${taskId} finished (a stopping daemon cancels its tasks); see \`luminaguard task show ${taskId}\`.`, { cause: e });
    }
    throw e;
  } finally {
    process.off("SIGINT", onSigint);
    asker.stop();
    stop.abort();
    await streaming.catch(() => undefined);
  }
}

/** The end as a TaskResult for AgentDisplay.result, from GET /v1/tasks/:id (steps, tokens) and task.finished. */
async function resultOf(client: DaemonClient, id: string, end: Record<string, unknown>, config: Config): Promise<{ task: TaskResult; replay: boolean; error: string | null }> {
  const s = await client.json<TaskStatus>("GET", `/v1/tasks/${encodeURIComponent(id)}`).catch(() => undefined);
  const state = String(end.state ?? s?.state ?? "failed");
  const status = (typeof s?.status === "string" ? s.status : state === "succeeded" ? "done" : state === "cancelled" ? "cancelled" : "error") as AgentStatus;
  const num = (v: unknown): number => (typeof v === "number" ? v : 0);
  const usage = (s?.usage as Usage | undefined) ?? { inputTokens: 0, outputTokens: 0 };
  const task: TaskResult = {
    id,
    status,
    reason: String(s?.reason ?? end.reason ?? state),
    steps: num(s?.steps),
    usage,
    finalText: s?.result ?? "",
    messages: [],
    denied: num(s?.denied),
    toolCalls: num(s?.toolCalls),
    transcriptPath: `${tasksDir(config.audit.path)}/${id}.jsonl`,
  };
  return { task, replay: s?.provider === "replay", error: s?.error ?? null };
}

