/**
 * Red cards of one command (`run` or `mcp call`) on a running daemon: asked on
 * the terminal one at a time (a second card waits its turn), or a hint per card
 * saying how to decide it elsewhere. A card decided elsewhere (the dashboard,
 * another terminal, its timeout) ends its question.
 */
import type { DaemonClient } from "../daemon/client.js";
import { approvalHint, approvePending, askYesNo, denyPending, findPending, renderPending, type AskTerminal, type DashboardAt, type PendingApproval } from "./daemon-approvals.js";
import { printError } from "./output.js";

export interface CardAskerOptions {
  client: DaemonClient;
  /** Where to ask; undefined prints how to approve elsewhere. */
  terminal: (AskTerminal & { color: boolean }) | undefined;
  /** The daemon's TCP address, for the dashboard link in hints. */
  tcp: DashboardAt | undefined;
  /** Which cards are ours (the task's or the call's session); undefined takes every card it is told about. */
  session?: string | undefined;
  /** Named in the decision's reason: "`luminaguard run`". */
  command: string;
  /** Where notes go (stderr). */
  err: NodeJS.WritableStream;
  /** Called before anything is written (a half-written line of streamed output ends first). */
  beforeWrite?: () => void;
}

export class CardAsker {
  #turn: Promise<void> = Promise.resolve();
  readonly #open = new Map<string, AbortController>();
  readonly #all = new AbortController();
  #asking: string | undefined;

  constructor(private readonly o: CardAskerOptions) {}

  /** A card was queued on the daemon (an approval.added event). */
  added(id: string): void {
    const ctl = new AbortController();
    this.#open.set(id, ctl);
    this.#turn = this.#turn.then(() => this.#handle(id, AbortSignal.any([ctl.signal, this.#all.signal]))).catch((e: unknown) => printError(e));
  }

  /** A card was decided (an approval.decided event): stop asking about it. */
  decided(id: string, decision: { approved?: boolean; by?: string } | undefined): void {
    const ctl = this.#open.get(id);
    if (!ctl) return;
    this.#open.delete(id);
    if (!ctl.signal.aborted && this.#asking === id) this.o.err.write(`\n${decision?.approved ? "approved" : "denied"} by ${decision?.by ?? "someone"} elsewhere\n`);
    ctl.abort();
  }

  /** Stop asking (the command ended or is being cancelled). */
  stop(): void {
    this.#all.abort();
  }

  async #handle(id: string, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const { client, terminal } = this.o;
    const p: PendingApproval | undefined = await findPending(client, id).catch(() => undefined);
    // Decided before we got to it, or another command's card.
    if (!p || signal.aborted || (this.o.session !== undefined && p.session !== this.o.session)) return;
    this.o.beforeWrite?.();
    if (!terminal) {
      this.o.err.write(await approvalHint(p, client.socketPath, this.o.tcp));
      return;
    }
    this.#asking = id;
    try {
      terminal.output.write(renderPending(p, terminal.color));
      const yes = await askYesNo(terminal, signal);
      if (yes === undefined) return;
      const d = yes ? await approvePending(client, p, `approved at the terminal of ${this.o.command}`) : await denyPending(client, p.id, `answered n at the terminal of ${this.o.command}`);
      terminal.output.write(d.decision.approved ? "Approved.\n" : "Denied.\n");
    } catch (e) {
      // Decided elsewhere between showing and answering: say so; the command's own result follows.
      printError(e);
    } finally {
      this.#asking = undefined;
    }
  }
}
