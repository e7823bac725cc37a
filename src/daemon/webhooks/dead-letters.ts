/**
 * Webhook deliveries that failed every attempt, kept as JSON Lines in the state
 * folder. Append-only (a replay appends a "replayed" line rather than rewriting
 * the file), so the daemon appending and the CLI replaying never lose a line.
 */
import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { stateDir } from "../../config/paths.js";
import { DaemonError } from "../errors.js";

/** One failed delivery. */
export interface DeadLetter {
  id: string;
  url: string;
  event: string;
  /** The exact JSON body that was sent (re-signed on replay). */
  body: string;
  attempts: number;
  lastError: string;
  failedAt: string;
}

type Line = ({ kind: "dead" } & DeadLetter) | { kind: "replayed"; id: string; at: string };

/** The default file: <stateDir>/webhook-dead-letters.jsonl. */
export function deadLetterPath(): string {
  return join(stateDir(), "webhook-dead-letters.jsonl");
}

/** The dead-letter list in one JSONL file. */
export class DeadLetters {
  constructor(readonly path: string = deadLetterPath()) {}

  /** Record a delivery that failed for good. */
  add(letter: DeadLetter): void {
    this.#append({ kind: "dead", ...letter });
  }

  /** Mark one as delivered by a replay; it leaves the list. */
  markReplayed(id: string): void {
    this.#append({ kind: "replayed", id, at: new Date().toISOString() });
  }

  /** Failed deliveries not replayed yet, oldest first. Unreadable lines are skipped (a crash mid-append). */
  list(): DeadLetter[] {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw new DaemonError("E_DAEMON_DEAD_LETTERS", `Cannot read the webhook dead-letter list ${this.path}: ${(err as Error).message}.`, { cause: err });
    }
    const dead = new Map<string, DeadLetter>();
    for (const raw of text.split("\n")) {
      if (raw.trim() === "") continue;
      let line: Line;
      try {
        line = JSON.parse(raw) as Line;
      } catch {
        continue;
      }
      if (line.kind === "dead") {
        const { kind: _kind, ...letter } = line;
        dead.set(letter.id, letter);
      } else if (line.kind === "replayed") dead.delete(line.id);
    }
    return [...dead.values()];
  }

  /** One failed delivery by id (a unique prefix is enough). */
  get(id: string): DeadLetter {
    const matches = this.list().filter((l) => l.id === id || l.id.startsWith(id));
    if (matches.length === 1) return matches[0]!;
    throw new DaemonError(
      "E_DAEMON_NOT_FOUND",
      matches.length === 0 ? `No dead letter ${id}; list them with \`luminaguard daemon webhooks dead-letters\`.` : `${id} matches ${matches.length} dead letters; give more of the id.`,
    );
  }

  #append(line: Line): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      // Bodies hold task and approval data: readable by this user only.
      appendFileSync(this.path, `${JSON.stringify(line)}\n`, { mode: 0o600 });
    } catch (err) {
      throw new DaemonError("E_DAEMON_DEAD_LETTERS", `Cannot write the webhook dead-letter list ${this.path}: ${(err as Error).message}. Make the state folder writable (LUMINAGUARD_STATE_DIR).`, { cause: err });
    }
  }
}
