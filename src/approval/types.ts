/**
 * The shapes the Approval Cliff works with. The MCP hub builds a `ToolCall` for
 * every `tools/call`, asks the classifier for a `Classification`, builds a
 * `DiffCard` for red calls, and asks an `Approver` for a `Decision`. Everything
 * here is plain data so it can be audited, sent over the API and shown in a page.
 */

/** MCP tool annotations, as the server declared them (all optional hints). */
export interface ToolAnnotations {
  title?: string | undefined;
  readOnlyHint?: boolean | undefined;
  destructiveHint?: boolean | undefined;
  idempotentHint?: boolean | undefined;
  openWorldHint?: boolean | undefined;
}

/** One tool call on its way to a server. */
export interface ToolCall {
  /** Configured server name ("fs"). */
  server: string;
  /** The server's own tool name ("write_file"), not the namespaced one. */
  tool: string;
  /** Arguments exactly as they will be sent. */
  args: Record<string, unknown>;
  /** What the server said about the tool in tools/list. */
  annotations?: ToolAnnotations | undefined;
  description?: string | undefined;
}

export type Verdict = "green" | "red";
export type RiskLevel = "low" | "medium" | "high" | "critical";

/** The classifier's answer, with why. */
export interface Classification {
  verdict: Verdict;
  risk: RiskLevel;
  /** One readable sentence: "tool name verb 'write' changes things". */
  reason: string;
  /** Which rule decided ("user-rule:2", "annotation:readOnlyHint", "verb:write", "default:unknown"). */
  rule: string;
}

/** What a red call would change; one variant per kind of effect. */
export type DiffCardBody =
  | { kind: "file-write"; path: string; existed: boolean; diff: string; added: number; removed: number; truncated: boolean; newBytes: number }
  | { kind: "file-delete"; path: string; existed: boolean; bytes: number | null; entries: number | null }
  | { kind: "file-move"; from: string; to: string; overwrites: boolean }
  | { kind: "command"; argv: string[]; cwd: string | null }
  | { kind: "message"; recipient: string | null; endpoint: string | null; subject: string | null; body: string; truncated: boolean }
  | { kind: "money"; from: string | null; to: string | null; amount: string; currency: string | null }
  | { kind: "generic"; args: string; truncated: boolean };

/** Everything a person needs to decide on one red call. */
export interface DiffCard {
  /** sha256 over server, tool and canonical args (see approval/call-hash). An approval names this hash. */
  hash: string;
  server: string;
  tool: string;
  classification: Classification;
  /** Short headline: "fs__write_file would overwrite /workspace/a.txt (+3 −1 lines)". */
  summary: string;
  body: DiffCardBody;
  createdAt: string;
}

/** A person's (or policy's) answer. */
export interface Decision {
  approved: boolean;
  /** Who decided: "terminal:alice", "policy", "elicitation", "api:<client>", "timeout". */
  by: string;
  /** Shown to the agent on a denial: "denied by user: not this file". */
  reason: string;
  /** The card hash this decision is for; the hub rejects a mismatch. */
  hash: string;
}

/** Something that can answer "may this red call run?". Must resolve (deny) on timeout or abort, never hang. */
export interface Approver {
  readonly name: string;
  /** `session` names who made the call (a task id), so a queued card can say which task it belongs to. */
  decide(card: DiffCard, opts: { signal?: AbortSignal | undefined; timeoutMs: number; session?: string | undefined }): Promise<Decision>;
}
