/** A task's limits from the config, with per-task overrides (CLI flags, an API request). */
import type { AgentConfig } from "./config.js";
import type { TaskLimits } from "./types.js";

/** TaskLimits from `agent` config; `over` wins where set. */
export function limitsFromConfig(cfg: AgentConfig, over: Partial<TaskLimits> = {}): TaskLimits {
  return {
    maxSteps: over.maxSteps ?? cfg.maxSteps,
    timeoutMs: over.timeoutMs ?? cfg.timeoutSeconds * 1000,
    tokenBudget: over.tokenBudget ?? cfg.tokenBudget,
  };
}
