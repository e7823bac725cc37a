/**
 * The head file `<db>.head`: the last row's id and hash, kept outside the database.
 * A chain cannot show that its newest rows were cut off (what remains is still a
 * valid chain); a second witness of where the chain ended can. Someone rewriting
 * the database must then also find and rewrite this file.
 */
import { closeSync, constants, fstatSync, ftruncateSync, openSync, readFileSync, readSync, writeSync } from "node:fs";

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
  return parseHead(text);
}

/** An empty file is one the store created and has not written yet: as good as missing. */
function parseHead(text: string): HeadFileState {
  if (text === "") return { state: "missing" };
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

/** Every record is padded to this length, so rewriting it in place never leaves a longer old tail behind. */
const RECORD_BYTES = 160;

/**
 * The store's handle on its head file. An append rewrites the record in place
 * through a kept-open fd (one pwrite, ~10 µs) instead of write-temp-and-rename
 * (~0.3 ms, most of an append): the gateway audits every tool call and its
 * added-latency budget is 2 ms. A record is far smaller than a page, so readers
 * never see half of one in practice; a crash mid-write leaves a record verify
 * reports as unreadable. No fsync: a power cut may lose the newest head, which
 * verify then reports; an fsync per call would cost more than the whole budget.
 * Writes happen under SQLite's write lock, so two processes never interleave.
 */
export class HeadFile {
  private fd: number | undefined;

  constructor(readonly path: string) {}

  /** The record as it is now (read through the same fd the writes use). */
  read(): HeadFileState {
    let fd: number;
    try {
      fd = this.handle();
    } catch (err) {
      return { state: "unreadable", reason: (err as Error).message, text: null };
    }
    const buf = Buffer.alloc(4096);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return parseHead(buf.toString("utf8", 0, n));
  }

  write(head: Head): void {
    const record = JSON.stringify({ format: FORMAT, lastId: head.lastId, hash: head.hash });
    this.put(`${record.padEnd(RECORD_BYTES - 1, " ")}\n`);
  }

  /** Put back earlier content (null: empty, as if missing) after an append was rolled back. Best effort. */
  restore(text: string | null): void {
    try {
      this.put(text ?? "");
    } catch {
      // The append already failed and that error is the one to report; verify will flag a wrong head.
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private put(text: string): void {
    const fd = this.handle();
    const buf = Buffer.from(text, "utf8");
    writeSync(fd, buf, 0, buf.length, 0);
    if (fstatSync(fd).size > buf.length) ftruncateSync(fd, buf.length);
  }

  /** The open fd; reopened when someone removed or replaced the file, so it comes back at its path. */
  private handle(): number {
    if (this.fd !== undefined && fstatSync(this.fd).nlink === 0) this.close();
    this.fd ??= openSync(this.path, constants.O_RDWR | constants.O_CREAT, 0o600);
    return this.fd;
  }
}

/** Write a head record once (a new log's genesis head). */
export function writeHeadFile(path: string, head: Head): void {
  const file = new HeadFile(path);
  try {
    file.write(head);
  } finally {
    file.close();
  }
}
