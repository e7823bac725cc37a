/**
 * The agent's public surface, for the CLI and the daemon: run a task against a
 * hub with a provider, follow it through events, read transcripts back.
 */
export { runTask, type RunTaskOptions, type AgentHub } from "./loop.js";
export { startTask, type StartTaskOptions, type StartedTask } from "./start.js";
export { chooseProvider, detectProvider, providerSecrets, DEFAULT_MODELS, DEFAULT_SAMPLE, type ChooseProviderOptions } from "./providers/choose.js";
export { loadRecording, parseRecording, sampleNames, type Recording, type ReplayTurn } from "./providers/recording.js";
export { TranscriptWriter, listTasks, readTranscript, tasksDir, newTaskId, type TaskSummary, type TranscriptRecord, type TranscriptSink } from "./transcript.js";
export { agentSchema, type AgentConfig } from "./config.js";
export { AgentError, type AgentErrorCode } from "./errors.js";
export { DEFAULT_SYSTEM_PROMPT } from "./prompt.js";
export { limitsFromConfig } from "./limits.js";
export type * from "./types.js";
