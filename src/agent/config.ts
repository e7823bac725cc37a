/**
 * The `agent` section of the config file. Embed with
 * `agent: z.prefault(agentSchema, {})` in src/config/schema.ts.
 */
import * as z from "zod/mini";

const int = (min: number, max: number) => z.number().check(z.int(), z.gte(min), z.lte(max));

/** Which model API the agent talks to; "auto" picks from the environment (OpenAI, Anthropic, Ollama, in that order). */
export const PROVIDER_NAMES = ["auto", "openai", "anthropic", "ollama", "replay"] as const;
export type ProviderChoice = (typeof PROVIDER_NAMES)[number];

/** Validates and defaults the agent config. */
export const agentSchema = z.strictObject({
  provider: z._default(z.enum(PROVIDER_NAMES), "auto"),
  /** The model name; unset means the provider's default (see providers/choose.ts). */
  model: z.optional(z.string().check(z.minLength(1, "agent.model must not be empty"))),
  /** An OpenAI-compatible, Anthropic or Ollama server; wins over OPENAI_BASE_URL / ANTHROPIC_BASE_URL / OLLAMA_HOST. */
  baseUrl: z.optional(z.url({ protocol: /^https?$/, error: "agent.baseUrl must be an http:// or https:// URL" })),
  /** Model turns per task (each turn may call several tools). */
  maxSteps: z._default(int(1, 10_000), 20),
  timeoutSeconds: z._default(int(1, 7 * 86_400), 600),
  /** Input plus output tokens a task may spend. */
  tokenBudget: z._default(int(1, 1_000_000_000), 200_000),
  /** The most tokens one model reply may have. */
  maxOutputTokens: z._default(int(1, 1_000_000), 4096),
  /** Replaces the built-in system prompt. */
  systemPrompt: z.optional(z.string().check(z.minLength(1, "agent.systemPrompt must not be empty"))),
  /** Stream model text as it is written (same result either way). */
  stream: z._default(z.boolean(), true),
  /** The recording the replay provider plays (a file path, or "sample:<name>"). */
  replay: z.optional(z.string().check(z.minLength(1))),
  /** When every API key is rate-limited, wait at most this long in all (Retry-After is honoured up to it). */
  rateLimitMaxWaitSeconds: z._default(int(0, 3_600), 60),
});

/** The validated agent config. */
export type AgentConfig = z.infer<typeof agentSchema>;
