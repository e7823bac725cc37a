/**
 * What the daemon needs from the agent loop to run tasks. The daemon defines
 * it (nothing imports the daemon) and the agent side implements it; until one
 * is plugged in, the task routes answer 503 E_DAEMON_NO_AGENT.
 */

export type TaskState = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** How to start a task; unset fields take the config's defaults. */
export interface TaskStartOptions {
  provider?: string | undefined;
  model?: string | undefined;
  /** Who asked (the API client), for the audit rows' session and logs. */
  client?: string | undefined;
}

/** A task's state as the API returns it. */
export interface TaskStatus {
  id: string;
  task: string;
  state: TaskState;
  provider: string | null;
  model: string | null;
  createdAt: string;
  finishedAt: string | null;
  /** The final answer, once succeeded. */
  result: string | null;
  /** Why it failed or was cancelled. */
  error: string | null;
  /** Whatever else the runner wants to show (steps, tokens used, ...). */
  [extra: string]: unknown;
}

/** One entry of a task's transcript (messages, tool calls, results), as plain JSON. */
export type TranscriptEntry = Record<string, unknown>;

/** A task's progress, published as runtime events `task.<type>` (task.started, task.finished, ...). */
export interface TaskEvent {
  type: string;
  taskId: string;
  data?: Record<string, unknown> | undefined;
}

/** Starts, watches and cancels agent tasks. */
export interface TaskRunner {
  /** Start a task in the background; resolves once it has an id. */
  start(task: string, opts: TaskStartOptions): Promise<{ id: string }>;
  /** One task, or undefined when the id is unknown. */
  status(id: string): TaskStatus | undefined;
  /** Every task this runner knows, newest first. */
  list(): TaskStatus[];
  /** Ask a task to stop; false when it is unknown or already finished. */
  cancel(id: string): Promise<boolean>;
  /** Stop every running task (daemon shutdown); resolves when they have stopped. */
  cancelAll(): Promise<void>;
  /** The task's transcript so far, or undefined when the id is unknown. */
  transcript(id: string): TranscriptEntry[] | undefined;
  /** Listen to task events; returns the function that stops listening. */
  subscribe(listener: (event: TaskEvent) => void): () => void;
}
