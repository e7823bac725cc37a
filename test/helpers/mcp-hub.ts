/** Building blocks for hub tests: a scripted approver that records its cards, an in-memory audit sink, result readers. */
import type { Approver, Decision, DiffCard } from "../../src/approval/types.js";
import type { AuditEntryInput } from "../../src/approval/audit/types.js";
import type { AuditSink, CallOutcome } from "../../src/mcp/hub.js";
import { OUTCOME_META } from "../../src/mcp/hub.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

/** The text parts of a tool result, joined. */
export const text = (r: CallToolResult): string => r.content.map((c) => (c.type === "text" ? c.text : "")).join("");

/** What the hub attached to a result: decision, who decided, verdict, error code. */
export const outcome = (r: CallToolResult): CallOutcome => r._meta?.[OUTCOME_META] as CallOutcome;

/** Answers red calls from a script (true = approve), recording each card it was shown. */
export class ScriptedApprover implements Approver {
  readonly name = "scripted";
  readonly cards: DiffCard[] = [];
  /** Next answers; when empty, deny. A function can forge a decision (e.g. a wrong hash). */
  readonly answers: (boolean | ((card: DiffCard) => Decision))[] = [];

  async decide(card: DiffCard): Promise<Decision> {
    this.cards.push(card);
    const next = this.answers.shift() ?? false;
    if (typeof next === "function") return next(card);
    return { approved: next, by: "test", reason: next ? "approved by test" : "denied by test: not this one", hash: card.hash };
  }
}

export class MemoryAudit implements AuditSink {
  readonly rows: AuditEntryInput[] = [];
  append(entry: AuditEntryInput): void {
    this.rows.push(entry);
  }
}
