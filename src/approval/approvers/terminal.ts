/**
 * The terminal approver: prints the card and asks
 * `Approve? [y]es / [n]o / [v]iew full diff`. One question at a time per
 * terminal (concurrent red calls wait their turn, their clocks running), and
 * nothing is left listening on the input once an answer, a timeout or an abort
 * has come, so the terminal is free for whatever runs next.
 */
import { userInfo } from "node:os";
import { createInterface } from "node:readline";
import { renderCardText } from "../render.js";
import type { Approver, Decision, DiffCard } from "../types.js";
import { seconds, settle, type DecideOptions } from "./settle.js";

/** Where to ask and how to print. */
export interface TerminalApproverOptions {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  color: boolean;
  /** Recorded as "terminal:<user>"; default the OS user name. */
  user?: string | undefined;
  width?: number | undefined;
}

const PROMPT = "Approve? [y]es / [n]o / [v]iew full diff: ";

/** Asks a person at a terminal. */
export class TerminalApprover implements Approver {
  readonly name = "terminal";
  readonly #opts: TerminalApproverOptions;
  readonly #by: string;
  #turn: Promise<unknown> = Promise.resolve();

  constructor(opts: TerminalApproverOptions) {
    this.#opts = opts;
    this.#by = `terminal:${opts.user ?? osUser()}`;
  }

  /** Print the card, ask, and resolve with the answer (denied on timeout or abort). */
  decide(card: DiffCard, opts: DecideOptions): Promise<Decision> {
    const out = this.#opts.output;
    const decision = settle(card, opts, (signal) => {
      const mine = this.#turn.then(() => this.#ask(card, signal));
      this.#turn = mine.catch(() => undefined);
      return mine;
    }, {
      onGiveUp: (d) => {
        out.write(`\n${d.by === "timeout" ? `No answer after ${seconds(opts.timeoutMs)}: denied.` : "Cancelled: denied."}\n`);
      },
    });
    return decision;
  }

  #ask(card: DiffCard, signal: AbortSignal): Promise<Omit<Decision, "hash">> {
    const { input, output, color, width } = this.#opts;
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(new Error("aborted before the question was asked"));
        return;
      }
      output.write(renderCardText(card, { color, full: false, width }));
      output.write(PROMPT);
      const rl = createInterface({ input, terminal: false });
      let over = false;
      const end = (fn: () => void) => {
        if (over) return;
        over = true;
        signal.removeEventListener("abort", onAbort);
        rl.removeAllListeners("line");
        rl.close();
        fn();
      };
      const onAbort = () => end(() => reject(new Error("aborted")));
      signal.addEventListener("abort", onAbort, { once: true });
      rl.on("line", (raw) => {
        const answer = raw.trim().toLowerCase();
        if (answer === "y" || answer === "yes") {
          end(() => resolve({ approved: true, by: this.#by, reason: "approved by user at the terminal" }));
        } else if (answer === "n" || answer === "no") {
          output.write("Denied.\n");
          end(() => resolve({ approved: false, by: this.#by, reason: "denied by user" }));
        } else if (answer === "v" || answer === "view") {
          output.write(renderCardText(card, { color, full: true }));
          output.write(PROMPT);
        } else {
          output.write(`Please answer y, n or v. ${PROMPT}`);
        }
      });
      // The input ended (Ctrl-D, closed pipe): nobody can answer, so deny now rather than wait for the timeout.
      rl.on("close", () => end(() => resolve({ approved: false, by: this.#by, reason: "denied: the terminal input closed before an answer" })));
    });
  }
}

function osUser(): string {
  try {
    return userInfo().username || "user";
  } catch {
    return "user";
  }
}
