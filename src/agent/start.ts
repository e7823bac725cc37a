/**
 * Starting a task the way the daemon needs it: the id at once (to answer the
 * request), the outcome later. Picks the provider from the config unless one
 * is given, opens the transcript next to the audit log, and closes it at the end.
 */
import type { Config } from "../config/schema.js";
import type { Approver } from "../approval/types.js";
import { runTask, type AgentHub } from "./loop.js";
import { limitsFromConfig } from "./limits.js";
import { chooseProvider, providerSecrets } from "./providers/choose.js";
import { TranscriptWriter, newTaskId, tasksDir } from "./transcript.js";
import type { AgentEvent, AgentMessage, Provider, TaskLimits, TaskResult } from "./types.js";

export interface StartTaskOptions {
  config: Config;
  hub: AgentHub;
  task: string;
  /** Default: chosen from config.agent and the environment. */
  provider?: Provider | undefined;
  /** The id to use (e.g. one already passed to the hub as its audit session); default a new one. */
  id?: string | undefined;
  approver?: Approver | undefined;
  signal?: AbortSignal | undefined;
  onEvent?: ((e: AgentEvent) => void) | undefined;
  limits?: Partial<TaskLimits> | undefined;
  history?: AgentMessage[] | undefined;
  /** Default process.env (where the API keys to keep out of the transcript are). */
  env?: NodeJS.ProcessEnv | undefined;
}

export interface StartedTask {
  id: string;
  provider: Provider;
  transcriptPath: string;
  /** Resolves when the task ends; never rejects for what happens during the task. */
  done: Promise<TaskResult>;
}

/** Start a task in the background; throws only for setup (no provider, unwritable transcript). */
export async function startTask(opts: StartTaskOptions): Promise<StartedTask> {
  const { config } = opts;
  const provider = opts.provider ?? (await chooseProvider({ config: config.agent, env: opts.env }));
  const transcript = TranscriptWriter.create(tasksDir(config.audit.path), { id: opts.id ?? newTaskId(), secrets: providerSecrets(opts.env), redact: config.audit.redact });
  const done = runTask({
    task: opts.task,
    hub: opts.hub,
    provider,
    limits: limitsFromConfig(config.agent, opts.limits),
    signal: opts.signal,
    approver: opts.approver,
    onEvent: opts.onEvent,
    transcript,
    history: opts.history,
    system: config.agent.systemPrompt,
    maxOutputTokens: config.agent.maxOutputTokens,
  }).finally(() => transcript.close());
  return { id: transcript.id, provider, transcriptPath: transcript.path, done };
}
