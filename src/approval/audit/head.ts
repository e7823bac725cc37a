/**
 * The head file `<db>.head`: the last row's id and hash, kept outside the database.
 * A chain cannot show that its newest rows were cut off (what remains is still a
 * valid chain); a second witness of where the chain ended can. Someone rewriting
 * the database must then also find and rewrite this file.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";

/** Where the chain ended. */
export interface Head {
  lastId: number;
  hash: string;
}

/** The head file as found on disk. `text` is its exact content, to put it back if a write is undone. */
export type HeadFileState =
  | { state: "ok"; head: Head; text: string }
  | { state: "missing" }
  | { state: "unreadable"; reason: string; text: string | null };

const FORMAT = "luminaguard-audit-head";

/** The head file of a database file. */
export function headPathFor(dbPath: string): string {
  return `${dbPath}.head`;
}

/** Read and check the head file; never throws. */
export function readHeadFile(path: string): HeadFileState {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { state: "missing" };
    return { state: "unreadable", reason: (err as Error).message, text: null };
  }
  try {
    const raw = JSON.parse(text) as { format?: unknown; lastId?: unknown; hash?: unknown };
    if (raw.format === FORMAT && Number.isSafeInteger(raw.lastId) && (raw.lastId as number) >= 0 && typeof raw.hash === "string" && /^[0-9a-f]{64}$/.test(raw.hash)) {
      return { state: "ok", head: { lastId: raw.lastId as number, hash: raw.hash }, text };
    }
  } catch {
    // Falls through to "unreadable" below: a damaged head file is itself a finding.
  }
  return { state: "unreadable", reason: "it is not a LuminaGuard audit head record", text };
}

/**
 * Replace the head file atomically (write a temporary file, then rename), mode 0600.
 * No fsync: a power cut may lose the newest head, which verify then reports; an
 * fsync per tool call would cost more than the whole latency budget.
 */
export function writeHeadFile(path: string, head: Head): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ format: FORMAT, lastId: head.lastId, hash: head.hash })}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/** Put back the head file's earlier content (or remove it when there was none), after an append was rolled back. */
export function restoreHeadFile(path: string, text: string | null): void {
  try {
    if (text === null) {
      rmSync(path, { force: true });
      return;
    }
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, path);
  } catch {
    // Best effort: the append already failed and that error is the one to report; verify will flag a wrong head.
  }
}
