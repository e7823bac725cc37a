/**
 * The daemon's pending approvals as the CLI uses them: find one by id (or a
 * unique prefix), show its Diff Card, approve it naming the card's hash, deny
 * it, and ask y/n on a terminal. Shared by `approvals` and `run` on a daemon.
 */
import { createInterface } from "node:readline";
import { renderCardText } from "../approval/render.js";
import type { DiffCard } from "../approval/types.js";
import type { DaemonClient } from "../daemon/client.js";
import { DaemonError } from "../daemon/errors.js";
import { socketHint } from "./daemon-link.js";

/** One pending approval as GET /v1/approvals lists it. */
export interface PendingApproval {
  id: string;
  /** The task (audit session) whose call waits; null for calls from elsewhere (the MCP gateway). */
  session: string | null;
  createdAt: string;
  expiresAt: string;
  hash: string;
  summary: string;
  cardJson: DiffCard;
}

/** What the daemon answers to approve/deny. */
export interface DecisionJson {
  id: string;
  decision: { approved: boolean; by: string; reason: string; hash: string };
}

/** Every pending approval, oldest first. */
export async function listPending(client: DaemonClient): Promise<PendingApproval[]> {
  return (await client.json<{ pending: PendingApproval[] }>("GET", "/v1/approvals")).pending;
}

/** The pending approval with this id or unique id prefix; E_APPROVAL_NOT_FOUND otherwise. */
export async function findPending(client: DaemonClient, id: string): Promise<PendingApproval> {
  const all = await listPending(client);
  const exact = all.find((p) => p.id === id);
  if (exact) return exact;
  const matches = id.length >= 4 ? all.filter((p) => p.id.startsWith(id)) : [];
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw new DaemonError("E_APPROVAL_AMBIGUOUS", `${matches.length} pending approvals start with '${id}'; give more of the id (see \`luminaguard approvals list\`).`);
  throw new DaemonError("E_APPROVAL_NOT_FOUND", `No pending approval ${id}: it was already decided, it expired, or the id is wrong. See \`luminaguard approvals list\`.`);
}

/** Approve the call this card shows (its hash binds the approval to exactly that call). */
export function approvePending(client: DaemonClient, p: PendingApproval, reason?: string): Promise<DecisionJson> {
  return client.json<DecisionJson>("POST", `/v1/approvals/${encodeURIComponent(p.id)}/approve`, { hash: p.hash, ...(reason ? { reason } : {}) });
}

/** Deny a pending call. */
export function denyPending(client: DaemonClient, id: string, reason?: string): Promise<DecisionJson> {
  return client.json<DecisionJson>("POST", `/v1/approvals/${encodeURIComponent(id)}/deny`, reason ? { reason } : {});
}

/** The card as terminal text, with the id, expiry and hash the person approves. */
export function renderPending(p: PendingApproval, color: boolean): string {
  const head = `approval ${p.id}${p.session ? ` · task ${p.session}` : ""} · expires ${p.expiresAt.slice(11, 19)} UTC · card ${p.hash.slice(0, 12)}\n`;
  return head + renderCardText(p.cardJson, { color, full: false });
}

/** Where the dashboard is, when the daemon serves TCP (config daemon.tcp). */
export interface DashboardAt {
  host?: string | undefined;
  port: number;
}

/** The lines that tell someone without a terminal how to decide this card from elsewhere. */
export async function approvalHint(p: PendingApproval, socketPath: string, tcp: DashboardAt | undefined): Promise<string> {
  const sock = await socketHint(socketPath);
  return (
    `luminaguard: approval needed: ${p.summary}\n` +
    `  approve: luminaguard approvals approve ${p.id}${sock}\n` +
    `  deny:    luminaguard approvals deny ${p.id}${sock}\n` +
    (tcp ? `  or on the dashboard: http://${tcp.host ?? "127.0.0.1"}:${tcp.port}/ui/#token=<daemon.tcp.token>\n` : "") +
    `  (waiting until ${p.expiresAt}; then it is denied)\n`
  );
}

/** A terminal to ask on. */
export interface AskTerminal {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  color: boolean;
}

const PROMPT = "Approve? [y]es / [n]o: ";

/**
 * Ask y/n once; resolves true/false, or undefined when `signal` aborts (decided
 * elsewhere, task over) or the input ends. Nothing is left reading the input.
 */
export function askYesNo(t: AskTerminal, signal: AbortSignal): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(undefined);
    t.output.write(PROMPT);
    const rl = createInterface({ input: t.input, terminal: false });
    let over = false;
    const end = (answer: boolean | undefined): void => {
      if (over) return;
      over = true;
      signal.removeEventListener("abort", onAbort);
      rl.removeAllListeners("line");
      rl.close();
      resolve(answer);
    };
    const onAbort = (): void => end(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    rl.on("line", (raw) => {
      const a = raw.trim().toLowerCase();
      if (a === "y" || a === "yes") end(true);
      else if (a === "n" || a === "no") end(false);
      else t.output.write(`Please answer y or n. ${PROMPT}`);
    });
    rl.on("close", () => end(undefined));
  });
}
