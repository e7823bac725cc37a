/**
 * The replay provider: plays a recording of a model's turns, for demos and
 * tests without an API key. The recording is of the model, not of the world:
 * when live tool results differ from what was recorded, it goes on regardless.
 * Every event of a replayed task carries `replay: true`, and the CLI prefixes
 * its lines with "replay:", so nobody mistakes it for a live model.
 */
import type { CompletionRequest, CompletionResult, Provider, ToolCallRequest } from "../types.js";
import type { Recording } from "./recording.js";

/** Plays `recording` one turn per complete() call. */
export class ReplayProvider implements Provider {
  readonly name = "replay";
  readonly model: string;
  private next = 0;

  constructor(private readonly recording: Recording) {
    this.model = recording.name;
  }

  /** Turns not played yet. */
  get remaining(): number {
    return this.recording.turns.length - this.next;
  }

  async complete(req: CompletionRequest): Promise<CompletionResult> {
    req.signal?.throwIfAborted();
    const index = this.next++;
    const turn = this.recording.turns[index];
    const text = turn ? (turn.text ?? "") : "replay: the recording has no more turns; ending here.";
    const toolCalls: ToolCallRequest[] = (turn?.toolCalls ?? []).map((c, i) => ({ id: c.id ?? `replay_${index + 1}_${i + 1}`, name: c.name, args: c.args }));
    // Streamed word by word, so a replay exercises the same display path as a live model.
    for (const piece of text.match(/\S+\s*|\s+/g) ?? []) req.onText?.(piece);
    // Recorded usage if there is one, else a fixed estimate (4 characters a token) so budgets behave.
    const usage = turn?.usage ?? { inputTokens: Math.ceil(JSON.stringify(req.messages).length / 4), outputTokens: Math.ceil((text.length + JSON.stringify(toolCalls).length) / 4) };
    return { message: { role: "assistant", text, toolCalls }, usage, stop: toolCalls.length > 0 ? "tool_calls" : "end" };
  }
}
