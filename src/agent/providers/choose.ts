/**
 * Which provider a task uses: `agent.provider` (or --provider), and for "auto"
 * the environment, in the order OpenAI, Anthropic, Ollama. With nothing set the
 * error names exactly the variables to set.
 */
import type { AgentConfig, ProviderChoice } from "../config.js";
import { AgentError } from "../errors.js";
import type { Provider } from "../types.js";
import { DEFAULT_RETRY, keysFromEnv, type RetryPolicy } from "./keys.js";
import { loadRecording } from "./recording.js";

/** Each provider's model when agent.model is unset. */
export const DEFAULT_MODELS = { openai: "gpt-4.1-mini", anthropic: "claude-sonnet-4-5", ollama: "llama3.1" } as const;

/** The replay recording used when --provider replay names none. */
export const DEFAULT_SAMPLE = "sample:fs-edit";

export interface ChooseProviderOptions {
  config: AgentConfig;
  env?: NodeJS.ProcessEnv | undefined;
  /** --provider, --model, --transcript: win over the config. */
  provider?: ProviderChoice | undefined;
  model?: string | undefined;
  replay?: string | undefined;
  /** Overrides the 5xx retry policy (tests); the rate-limit bound comes from the config. */
  retry?: Partial<RetryPolicy> | undefined;
}

const NONE_MESSAGE =
  "No model provider is set up. Set one of: OPENAI_API_KEY (OpenAI, or with OPENAI_BASE_URL any OpenAI-compatible server), ANTHROPIC_API_KEY (Anthropic), OLLAMA_HOST (Ollama, e.g. http://127.0.0.1:11434); or play a recording with --provider replay --transcript FILE.";

/** The provider "auto" would pick from this environment, if any. */
export function detectProvider(env: NodeJS.ProcessEnv): "openai" | "anthropic" | "ollama" | undefined {
  if (env.OPENAI_API_KEY?.trim()) return "openai";
  if (env.ANTHROPIC_API_KEY?.trim()) return "anthropic";
  if (env.OLLAMA_HOST?.trim()) return "ollama";
  return undefined;
}

/** Build the provider for a task (throws E_AGENT_NO_PROVIDER, E_AGENT_REPLAY). */
export async function chooseProvider(opts: ChooseProviderOptions): Promise<Provider> {
  const env = opts.env ?? process.env;
  const cfg = opts.config;
  const choice = opts.provider ?? cfg.provider;
  const name = choice === "auto" ? (opts.replay ? "replay" : detectProvider(env)) : choice;
  if (!name) throw new AgentError("E_AGENT_NO_PROVIDER", NONE_MESSAGE);
  const retry: RetryPolicy = { ...DEFAULT_RETRY, maxWaitMs: cfg.rateLimitMaxWaitSeconds * 1000, ...opts.retry };
  const model = opts.model ?? cfg.model;
  // Loaded on demand: each SDK costs start-up time, and a task needs one.
  switch (name) {
    case "openai": {
      const keys = keysFromEnv(env, "OPENAI_API_KEY");
      if (keys.length === 0) throw new AgentError("E_AGENT_NO_PROVIDER", "The provider is openai but OPENAI_API_KEY is not set. Set OPENAI_API_KEY (any value for a compatible server that needs none; OPENAI_BASE_URL or agent.baseUrl for its address).");
      const { OpenAIProvider } = await import("./openai.js");
      return new OpenAIProvider({ model: model ?? DEFAULT_MODELS.openai, keys, baseUrl: cfg.baseUrl ?? (env.OPENAI_BASE_URL?.trim() || undefined), stream: cfg.stream, retry });
    }
    case "anthropic": {
      const keys = keysFromEnv(env, "ANTHROPIC_API_KEY");
      if (keys.length === 0) throw new AgentError("E_AGENT_NO_PROVIDER", "The provider is anthropic but ANTHROPIC_API_KEY is not set. Set ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL or agent.baseUrl for another address).");
      const { AnthropicProvider } = await import("./anthropic.js");
      return new AnthropicProvider({ model: model ?? DEFAULT_MODELS.anthropic, keys, baseUrl: cfg.baseUrl ?? (env.ANTHROPIC_BASE_URL?.trim() || undefined), stream: cfg.stream, retry, defaultMaxTokens: cfg.maxOutputTokens });
    }
    case "ollama": {
      const { OllamaProvider } = await import("./ollama.js");
      return new OllamaProvider({ model: model ?? DEFAULT_MODELS.ollama, host: cfg.baseUrl ?? (env.OLLAMA_HOST?.trim() || undefined), keys: keysFromEnv(env, "OLLAMA_API_KEY"), stream: cfg.stream, retry });
    }
    case "replay": {
      const { ReplayProvider } = await import("./replay.js");
      return new ReplayProvider(loadRecording(opts.replay ?? cfg.replay ?? DEFAULT_SAMPLE));
    }
  }
}

/** Values that must never reach a transcript: every API key in the environment. */
export function providerSecrets(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.entries(env)
    .filter(([k, v]) => /^(OPENAI|ANTHROPIC|OLLAMA)_API_KEY(_\d+)?$/.test(k) && typeof v === "string" && v.trim().length >= 4)
    .map(([, v]) => v!.trim());
}
