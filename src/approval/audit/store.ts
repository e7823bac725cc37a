/**
 * The audit log: one SQLite file, one row per tool call that passed the gateway,
 * append-only and hash-chained (see chain.ts, verify.ts). The MCP hub appends on
 * the hot path of every call, so an append is one short write transaction on
 * statements prepared once.
 */
import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { GENESIS, rowHash, type ChainFields } from "./chain.js";
import { ensureSchema } from "./ddl.js";
import { AuditError } from "./errors.js";
import { HeadFile, headPathFor, type Head } from "./head.js";
import { DEFAULT_MAX_ARGS_BYTES, DEFAULT_REDACT, keyMatcher, storedArgs, type KeyMatcher } from "./redact.js";
import { COLUMNS, listQuery, toAuditRow, type RawRow } from "./rows.js";
import { AUDIT_DECISIONS, type AuditEntryInput, type AuditFilter, type AuditRow, type VerifyResult } from "./types.js";
import { verifyLog } from "./verify.js";

/** How to open a log. */
export interface AuditStoreOptions {
  /** Key-name globs whose values are stored as "[REDACTED]" (default DEFAULT_REDACT; a list replaces the defaults). */
  redact?: readonly string[] | undefined;
  /** Cap on the stored argument text (default 64 KiB). */
  maxArgsBytes?: number | undefined;
  /** Open an existing log for reading only: nothing is created or written (CLI, forensic copies). */
  readOnly?: boolean | undefined;
  /** How long an append waits for another process's write to finish (default 5 s). */
  busyTimeoutMs?: number | undefined;
}

/** A tool's error text is kept up to this many characters; stack traces from servers can be huge. */
const MAX_ERROR_CHARS = 16 * 1024;

const VERDICTS = new Set(["green", "red"]);
const DECISIONS = new Set<string>(AUDIT_DECISIONS);

/** The tamper-evident audit log in one SQLite file. */
export class AuditStore {
  /** The database file. */
  readonly path: string;
  /** The side file holding the last id and hash (see head.ts). */
  readonly headPath: string;
  private readonly db: DatabaseSync;
  private readonly headFile: HeadFile;
  private readonly matches: KeyMatcher;
  private readonly maxArgsBytes: number;
  private readonly readOnly: boolean;
  private readonly listStatements = new Map<string, StatementSync>();
  private readonly stmt: { lastRow: StatementSync; head: StatementSync; insert: StatementSync; setHead: StatementSync; get: StatementSync; all: StatementSync };
  private closed = false;

  private constructor(path: string, db: DatabaseSync, options: AuditStoreOptions) {
    this.path = path;
    this.headPath = headPathFor(path);
    this.headFile = new HeadFile(this.headPath);
    this.db = db;
    this.matches = keyMatcher(options.redact ?? DEFAULT_REDACT);
    this.maxArgsBytes = options.maxArgsBytes ?? DEFAULT_MAX_ARGS_BYTES;
    this.readOnly = options.readOnly === true;
    this.stmt = {
      lastRow: db.prepare("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1"),
      head: db.prepare("SELECT last_id, hash FROM audit_head WHERE k = 1"),
      insert: db.prepare(`INSERT INTO audit_log (${COLUMNS}) VALUES (${COLUMNS.split(",").map(() => "?").join(", ")})`),
      setHead: db.prepare("UPDATE audit_head SET last_id = ?, hash = ? WHERE k = 1"),
      get: db.prepare(`SELECT ${COLUMNS} FROM audit_log WHERE id = ?`),
      all: db.prepare(`SELECT ${COLUMNS} FROM audit_log ORDER BY id`),
    };
  }

  /** Open (and, unless read-only, create) the log at `path`: folder 0700, file 0600, WAL. */
  static open(path: string, options: AuditStoreOptions = {}): AuditStore {
    const file = resolve(path);
    const readOnly = options.readOnly === true;
    if (readOnly && !existsSync(file)) {
      throw new AuditError("E_AUDIT_OPEN", `No audit log at ${file}: nothing has been audited there yet, or the path is wrong (set audit.path in the config, or --db).`, { details: { path: file } });
    }
    if (!readOnly) {
      try {
        mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
        // Create it ourselves so it is 0600 from the first byte; SQLite gives -wal and -shm the same mode.
        closeSync(openSync(file, "a", 0o600));
      } catch (err) {
        throw new AuditError("E_AUDIT_OPEN", `Cannot create the audit log ${file}: ${(err as Error).message}. Make its folder writable by this user, or set audit.path (or --db) to a writable place.`, { cause: err, details: { path: file } });
      }
    }
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(file, { readOnly, timeout: options.busyTimeoutMs ?? 5000 });
    } catch (err) {
      const hint = readOnly ? "Check the path (audit.path or --db); nothing has been audited there yet if the file does not exist." : "Check that the file is readable and writable by this user.";
      throw new AuditError("E_AUDIT_OPEN", `Cannot open the audit log ${file}: ${(err as Error).message}. ${hint}`, { cause: err, details: { path: file } });
    }
    try {
      if (!readOnly) {
        // WAL: readers (the CLI, verify) never block the gateway's appends, and an append is one sequential write.
        db.exec("PRAGMA journal_mode = WAL");
        // NORMAL under WAL still never corrupts the file; a power cut (not a crash) may lose the last
        // commits. FULL would fsync every append, several ms on most disks, over the 2 ms per-call budget.
        db.exec("PRAGMA synchronous = NORMAL");
      }
      ensureSchema(db, file, headPathFor(file), readOnly);
      return new AuditStore(file, db, options);
    } catch (err) {
      db.close();
      if (err instanceof AuditError) throw err;
      const code = (err as { errcode?: number }).errcode;
      // 26 SQLITE_NOTADB; 11 SQLITE_CORRUPT.
      if (code === 26 || code === 11) {
        throw new AuditError("E_AUDIT_CORRUPT", `${file} is not a LuminaGuard audit log (${(err as Error).message}). Point audit.path or --db at the right file, or move this one away.`, { cause: err, details: { path: file } });
      }
      throw new AuditError("E_AUDIT_OPEN", `Cannot open the audit log ${file}: ${(err as Error).message}.`, { cause: err, details: { path: file } });
    }
  }

  /** Append one entry (redacted, capped, chained) and return the stored row. */
  append(entry: AuditEntryInput): AuditRow {
    this.ensureOpen();
    if (this.readOnly) throw new AuditError("E_AUDIT_WRITE", `The audit log ${this.path} was opened read-only; cannot append.`);
    const base = this.prepareEntry(entry);
    const db = this.db;
    try {
      // IMMEDIATE takes the write lock now, so the previous hash read below cannot go stale before our INSERT.
      db.exec("BEGIN IMMEDIATE");
    } catch (err) {
      throw new AuditError("E_AUDIT_WRITE", `Cannot lock the audit log ${this.path} for writing: ${(err as Error).message}. Another process holds it too long; check for a stuck luminaguard process.`, { cause: err });
    }
    let priorHeadFile: string | null | undefined;
    try {
      const { prev, headFileText } = this.previous();
      const fields: ChainFields = { ...base, id: prev.lastId + 1 };
      const hash = rowHash(prev.hash, fields);
      this.stmt.insert.run(
        fields.id, fields.time, fields.server, fields.tool, fields.verdict, fields.risk, fields.reason, fields.rule, fields.argsHash, fields.args,
        fields.argsTruncated ? 1 : 0, fields.decision, fields.decidedBy, fields.latencyMs, fields.resultBytes, fields.error, fields.session, prev.hash, hash,
      );
      this.stmt.setHead.run(fields.id, hash);
      // Written while we still hold the write lock (not after COMMIT): two processes appending then
      // cannot leave the file pointing at an older row than the database.
      priorHeadFile = headFileText;
      this.headFile.write({ lastId: fields.id, hash });
      db.exec("COMMIT");
      return toAuditRow(this.stmtRow(fields, prev.hash, hash));
    } catch (err) {
      if (db.isTransaction) {
        try {
          db.exec("ROLLBACK");
        } catch {
          // The connection is already out of the transaction; the original error says why.
        }
      }
      if (priorHeadFile !== undefined) this.headFile.restore(priorHeadFile);
      if (err instanceof AuditError) throw err;
      throw new AuditError("E_AUDIT_WRITE", `Cannot write to the audit log ${this.path}: ${(err as Error).message}.`, { cause: err });
    }
  }

  /** Rows matching `filter`, newest first (default 50). */
  list(filter: AuditFilter = {}): AuditRow[] {
    this.ensureOpen();
    const { sql, params } = listQuery(filter);
    let stmt = this.listStatements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.listStatements.set(sql, stmt);
    }
    return (stmt.all(...params) as RawRow[]).map(toAuditRow);
  }

  /** One row by id. */
  get(id: number): AuditRow | undefined {
    this.ensureOpen();
    const raw = this.stmt.get.get(id) as RawRow | undefined;
    return raw ? toAuditRow(raw) : undefined;
  }

  /** Walk the whole chain and both head records; see verify.ts for what is and is not detected. */
  verify(): VerifyResult {
    this.ensureOpen();
    return verifyLog(this.db, this.headPath);
  }

  /** Every row, oldest first, read one at a time (a huge log never sits in memory). */
  *exportAll(): Iterable<AuditRow> {
    this.ensureOpen();
    for (const raw of this.stmt.all.iterate() as Iterable<RawRow>) yield toAuditRow(raw);
  }

  /** Close the database; later calls fail. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.headFile.close();
    this.db.close();
  }

  /**
   * Where to chain from: the furthest of the newest row, the head table and the head
   * file. If someone cut off the newest rows, the next row keeps the old numbering
   * and prev_hash, so the gap stays visible to verify instead of being papered over.
   */
  private previous(): { prev: Head; headFileText: string | null | undefined } {
    const row = this.stmt.lastRow.get() as { id: number; hash: string } | undefined;
    let prev: Head = row ? { lastId: Number(row.id), hash: String(row.hash) } : { lastId: 0, hash: GENESIS };
    const table = this.stmt.head.get() as { last_id: number; hash: string } | undefined;
    if (table && Number(table.last_id) > prev.lastId) prev = { lastId: Number(table.last_id), hash: String(table.hash) };
    const file = this.headFile.read();
    if (file.state === "ok" && file.head.lastId > prev.lastId) prev = file.head;
    // undefined: the file could not be read, so there is nothing we could put back.
    const headFileText = file.state === "ok" ? file.text : file.state === "missing" ? null : (file.text ?? undefined);
    return { prev, headFileText };
  }

  /** Validate the entry and compute everything but the id, outside the write lock. */
  private prepareEntry(entry: AuditEntryInput): Omit<ChainFields, "id"> {
    const bad = (why: string): never => {
      throw new AuditError("E_AUDIT_WRITE", `Refusing a malformed audit entry: ${why}.`, { details: { server: entry.server, tool: entry.tool } });
    };
    const time = entry.time ?? new Date();
    if (!(time instanceof Date) || Number.isNaN(time.getTime())) bad("time is not a valid Date");
    if (typeof entry.server !== "string" || entry.server === "") bad("server must be a non-empty string");
    if (typeof entry.tool !== "string" || entry.tool === "") bad("tool must be a non-empty string");
    if (!VERDICTS.has(entry.verdict)) bad(`verdict must be green or red, not ${JSON.stringify(entry.verdict)}`);
    if (!DECISIONS.has(entry.decision)) bad(`decision must be one of ${AUDIT_DECISIONS.join(", ")}, not ${JSON.stringify(entry.decision)}`);
    if (typeof entry.latencyMs !== "number" || !Number.isFinite(entry.latencyMs) || entry.latencyMs < 0) bad("latencyMs must be a finite number >= 0");
    if (entry.resultBytes !== null && !(Number.isSafeInteger(entry.resultBytes) && entry.resultBytes >= 0)) bad("resultBytes must be null or an integer >= 0");
    if (entry.args === null || typeof entry.args !== "object" || Array.isArray(entry.args)) bad("args must be an object");
    const args = storedArgs(entry.args, this.matches, this.maxArgsBytes);
    const error = entry.error == null ? null : entry.error.length <= MAX_ERROR_CHARS ? entry.error : `${entry.error.slice(0, MAX_ERROR_CHARS)}… [truncated]`;
    return {
      time: time.toISOString(),
      server: entry.server,
      tool: entry.tool,
      verdict: entry.verdict,
      risk: String(entry.risk),
      reason: String(entry.reason),
      rule: String(entry.rule),
      argsHash: String(entry.argsHash),
      args: args.text,
      argsTruncated: args.truncated,
      decision: entry.decision,
      decidedBy: entry.decidedBy ?? null,
      latencyMs: entry.latencyMs,
      resultBytes: entry.resultBytes,
      error,
      session: entry.session ?? null,
    };
  }

  /** The raw record we just inserted, without reading it back. */
  private stmtRow(f: ChainFields, prevHash: string, hash: string): RawRow {
    return {
      id: f.id, time: f.time, server: f.server, tool: f.tool, verdict: f.verdict, risk: f.risk, reason: f.reason, rule: f.rule, args_hash: f.argsHash, args: f.args,
      args_truncated: f.argsTruncated ? 1 : 0, decision: f.decision, decided_by: f.decidedBy, latency_ms: f.latencyMs, result_bytes: f.resultBytes, error: f.error,
      session: f.session, prev_hash: prevHash, hash,
    };
  }

  private ensureOpen(): void {
    if (this.closed) throw new AuditError("E_AUDIT_OPEN", `The audit log ${this.path} is closed.`);
  }
}
