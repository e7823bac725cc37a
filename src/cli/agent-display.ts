/**
 * How `run` and `chat` show a task as it happens: the model's text as it
 * streams, each tool call with its verdict (green / RED), results in one line,
 * the end. A replayed recording has "replay: " in front of every line.
 * `--json` prints the events themselves, one JSON object a line.
 */
import type { AgentEvent, TaskResult } from "../agent/types.js";
import { style } from "./style.js";

/** Prints events to a stream (stdout for run and chat). */
export class AgentDisplay {
  private atLineStart = true;
  private streamedStep = -1;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly json: boolean,
  ) {}

  /** Handle one event (pass as runTask's onEvent). */
  readonly onEvent = (e: AgentEvent): void => {
    if (this.json) {
      // Deltas are noise in a log; the final text event carries the whole text.
      if (e.type !== "text-delta") this.out.write(`${JSON.stringify(e)}\n`);
      return;
    }
    const p = e.replay ? "replay: " : "";
    switch (e.type) {
      case "task-start":
        this.line(p, style.dim(`task ${e.taskId} · ${e.provider} ${e.model} · ${e.tools} tools`));
        break;
      case "step-start":
        break;
      case "text-delta":
        this.streamedStep = e.step;
        this.text(p, e.text);
        break;
      case "text":
        if (this.streamedStep !== e.step) this.text(p, e.text);
        this.endLine();
        break;
      case "notice":
        this.line(p, style.yellow(`! ${e.notice.message}`));
        break;
      case "usage":
        break;
      case "tool-call": {
        const verdict = e.verdict === "red" ? style.red(`RED${e.risk ? ` ${e.risk}` : ""}`) : e.verdict === "green" ? style.green("green") : style.dim("unknown");
        this.line(p, `→ ${style.bold(e.name)} ${shortJson(e.args)}  [${verdict}]`);
        break;
      }
      case "tool-result": {
        const o = e.outcome;
        if (o?.decision === "denied") this.line(p, `  ${style.red("✗ denied")}: ${e.summary}`);
        else if (!e.ok) this.line(p, `  ${style.red("✗ failed")}: ${e.summary}`);
        else this.line(p, `  ${style.green("✓")} ${o?.decision === "approved" ? `approved by ${o.decidedBy ?? "someone"} · ` : ""}${e.bytes} bytes: ${e.summary}`);
        break;
      }
      case "task-end":
        break;
    }
  };

  /** The closing line(s) after runTask resolves. */
  result(r: TaskResult, replay: boolean): void {
    if (this.json) {
      const { messages: _messages, ...rest } = r;
      this.out.write(`${JSON.stringify({ type: "result", ...(replay ? { replay: true } : {}), ...rest })}\n`);
      return;
    }
    const p = replay ? "replay: " : "";
    const tokens = r.usage.inputTokens + r.usage.outputTokens;
    const facts = [`${r.steps} step${r.steps === 1 ? "" : "s"}`, `${r.toolCalls} tool call${r.toolCalls === 1 ? "" : "s"}`, ...(r.denied > 0 ? [`${r.denied} denied`] : []), `${tokens} tokens`];
    const head = r.status === "done" ? style.green("done") : r.status === "cancelled" ? style.yellow("cancelled") : style.red(r.status.replace("_", " "));
    this.line(p, `${head}: ${r.reason} (${facts.join(", ")})`);
    if (r.error) this.line(p, style.red(`${r.error.code}: ${r.error.message}`));
    if (r.transcriptPath) this.line(p, style.dim(`transcript: ${r.transcriptPath} (luminaguard task show ${r.id})`));
  }

  /** Finish a half-written line (before a prompt or another writer). */
  endLine(): void {
    if (!this.atLineStart) this.out.write("\n");
    this.atLineStart = true;
  }

  private line(prefix: string, text: string): void {
    this.endLine();
    this.out.write(`${prefix}${text}\n`);
  }

  private text(prefix: string, text: string): void {
    // The prefix goes at the start of every line, also inside streamed text.
    for (const piece of text.split(/(?<=\n)/)) {
      if (piece === "") continue;
      if (this.atLineStart) this.out.write(prefix);
      this.out.write(piece);
      this.atLineStart = piece.endsWith("\n");
    }
  }
}

function shortJson(v: unknown, max = 160): string {
  const s = JSON.stringify(v) ?? "";
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
