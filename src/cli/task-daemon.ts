/**
 * `task list` with a daemon running: its tasks (GET /v1/tasks) joined to the
 * transcripts on disk, so a task running in the daemon shows even when the
 * daemon writes its transcripts elsewhere (another audit.path) or has not
 * written one yet.
 */
import type { TaskSummary } from "../agent/transcript.js";
import type { TaskStatus as AgentStatus, Usage } from "../agent/types.js";
import type { Config } from "../config/schema.js";
import type { TaskStatus } from "../daemon/tasks.js";
import { runningDaemon } from "./daemon-link.js";

/** A task as `task list` shows it; `daemon` is the daemon's state when the daemon knows the task. */
export type ListedTask = TaskSummary & { daemon?: TaskStatus["state"] };

/** The tasks on disk plus the running daemon's (if any), newest first. */
export async function withDaemonTasks(onDisk: TaskSummary[], config: Config, dir: string): Promise<ListedTask[]> {
  const client = await runningDaemon(config);
  if (!client) return onDisk;
  let live: TaskStatus[];
  try {
    live = (await client.json<{ tasks: TaskStatus[] }>("GET", "/v1/tasks")).tasks;
  } catch {
    // A daemon without an agent (503) or one stopping: the files are still the answer.
    return onDisk;
  }
  const byId = new Map<string, ListedTask>(onDisk.map((t) => [t.id, t]));
  for (const s of live) {
    const known = byId.get(s.id);
    if (known) {
      byId.set(s.id, { ...known, daemon: s.state });
      continue;
    }
    byId.set(s.id, {
      id: s.id,
      task: s.task,
      provider: s.provider ?? "?",
      model: s.model ?? "?",
      startedAt: s.createdAt,
      status: s.state === "running" || s.state === "queued" ? "running" : ((s.status as AgentStatus | undefined) ?? (s.state === "succeeded" ? "done" : s.state === "cancelled" ? "cancelled" : "error")),
      reason: typeof s.reason === "string" ? s.reason : s.error,
      steps: typeof s.steps === "number" ? s.steps : null,
      usage: (s.usage as Usage | undefined) ?? null,
      path: `${dir}/${s.id}.jsonl`,
      daemon: s.state,
    });
  }
  return [...byId.values()].sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0));
}
