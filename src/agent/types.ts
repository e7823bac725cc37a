/**
 * The agent's provider-neutral shapes: the conversation, the tools offered to
 * the model, one model turn, the events a live display (CLI, the daemon's SSE)
 * follows, and a finished task. Every provider translates to and from these,
 * so the loop never knows which API is on the other end.
 */

/** One tool call the model asked for. `name` is the hub's name (`server__tool`), already mapped back. */
export interface ToolCallRequest {
  /** The provider's id for the call (OpenAI `call_…`, Anthropic `toolu_…`); made up where the API has none. */
  id: string;
  name: string;
  args: Record<string, unknown>;
  /** The raw argument text when it was not a JSON object; the call is answered with an error instead of run. */
  invalidArgs?: string | undefined;
}

/** The answer to one tool call, as the model reads it. */
export interface ToolResultPart {
  id: string;
  name: string;
  text: string;
  isError: boolean;
}

export type AgentMessage =
  | { role: "user"; text: string }
  | { role: "assistant"; text: string; toolCalls: ToolCallRequest[] }
  /** The results for every call of the assistant message before it, in the same order. */
  | { role: "tool"; results: ToolResultPart[] };

/** A tool as the model sees it (hub name, description, the server's JSON Schema). */
export interface ToolSpec {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

/** Why the model stopped this turn. */
export type StopReason = "end" | "tool_calls" | "max_tokens";

/** Said by a provider while it works (rate limits, retries), for the live display and the transcript. */
export interface ProviderNotice {
  kind: "rate-limited" | "retry";
  /** 1 for OPENAI_API_KEY, 2 for OPENAI_API_KEY_2, …; never the key itself. */
  keyIndex: number;
  /** How long the provider waits before the next attempt (0 = at once, with another key). */
  waitMs: number;
  message: string;
}

export interface CompletionRequest {
  system: string;
  messages: AgentMessage[];
  tools: ToolSpec[];
  signal?: AbortSignal | undefined;
  maxTokens?: number | undefined;
  /** Text as it streams in; the final message holds the same text. */
  onText?: ((delta: string) => void) | undefined;
  onNotice?: ((notice: ProviderNotice) => void) | undefined;
}

export interface CompletionResult {
  message: Extract<AgentMessage, { role: "assistant" }>;
  usage: Usage;
  stop: StopReason;
  /** Which API key answered (1-based, see ProviderNotice.keyIndex); absent for providers without keys. */
  keyIndex?: number | undefined;
}

/** A model behind one small interface: OpenAI, Anthropic, Ollama or a replayed recording. */
export interface Provider {
  readonly name: "openai" | "anthropic" | "ollama" | "replay";
  readonly model: string;
  complete(req: CompletionRequest): Promise<CompletionResult>;
}

/** How a task ended. */
export type TaskStatus = "done" | "max_steps" | "timeout" | "budget" | "cancelled" | "error";

export interface TaskLimits {
  maxSteps: number;
  timeoutMs: number;
  /** Input plus output tokens over the whole task. */
  tokenBudget: number;
}

/** The outcome the hub attached to a tool result (decision, who decided, verdict, error code). */
export interface ToolOutcome {
  decision: "auto" | "approved" | "denied" | "not-run";
  decidedBy: string | null;
  verdict: "green" | "red";
  code: string | null;
}

/** Events of one task, in order. `replay: true` marks every event of a replayed recording. */
export type AgentEvent = { taskId: string; replay?: true } & (
  | { type: "task-start"; task: string; provider: string; model: string; tools: number }
  | { type: "step-start"; step: number }
  | { type: "text-delta"; step: number; text: string }
  | { type: "text"; step: number; text: string }
  | { type: "notice"; step: number; notice: ProviderNotice }
  | { type: "usage"; step: number; usage: Usage; total: Usage; keyIndex: number | null }
  | { type: "tool-call"; step: number; id: string; name: string; args: Record<string, unknown>; verdict: "green" | "red" | null; risk: string | null; reason: string | null }
  | { type: "tool-result"; step: number; id: string; name: string; ok: boolean; bytes: number; outcome: ToolOutcome | null; summary: string }
  | { type: "task-end"; status: TaskStatus; reason: string; steps: number; usage: Usage }
);

/** What runTask resolves with. */
export interface TaskResult {
  id: string;
  status: TaskStatus;
  /** One readable sentence: why it ended. */
  reason: string;
  steps: number;
  usage: Usage;
  /** The model's last text (its answer, when done). */
  finalText: string;
  /** The whole conversation after this task, to continue it (chat). */
  messages: AgentMessage[];
  /** Calls that were denied (by a person or policy). */
  denied: number;
  toolCalls: number;
  /** Set when status is "error". */
  error?: { code: string; message: string } | undefined;
  transcriptPath: string | null;
}
