/**
 * The database layout (schema version 1) and the checks made when a file is opened.
 * Rows are append-only by trigger, so LuminaGuard itself cannot rewrite history
 * by mistake; someone editing the file with another tool can drop the triggers,
 * which is what the hash chain and `verify` are for.
 */
import type { DatabaseSync } from "node:sqlite";
import { AuditError } from "./errors.js";
import { GENESIS } from "./chain.js";
import { writeHeadFile } from "./head.js";

/** The schema this code writes; it reads this one and older ones. */
export const SCHEMA_VERSION = 1;

/** Marks the file as ours in audit_meta. */
const FORMAT = "luminaguard-audit";

/** The triggers that make rows append-only; verify reports any that are missing. */
export const APPEND_ONLY_TRIGGERS = ["audit_log_no_update", "audit_log_no_delete"] as const;

const CREATE = `
CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY,
  time TEXT NOT NULL,
  server TEXT NOT NULL,
  tool TEXT NOT NULL,
  verdict TEXT NOT NULL CHECK (verdict IN ('green', 'red')),
  risk TEXT NOT NULL,
  reason TEXT NOT NULL,
  rule TEXT NOT NULL,
  args_hash TEXT NOT NULL,
  args TEXT NOT NULL,
  args_truncated INTEGER NOT NULL,
  decision TEXT NOT NULL CHECK (decision IN ('auto', 'approved', 'denied', 'not-run')),
  decided_by TEXT,
  latency_ms REAL NOT NULL,
  result_bytes INTEGER,
  error TEXT,
  session TEXT,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_time ON audit_log (time);
CREATE INDEX audit_log_server_tool ON audit_log (server, tool);
-- Written in the same transaction as each row: where the chain ended, as a witness against cutting off the newest rows.
CREATE TABLE audit_head (k INTEGER PRIMARY KEY CHECK (k = 1), last_id INTEGER NOT NULL, hash TEXT NOT NULL) STRICT;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'LuminaGuard audit rows are append-only: UPDATE refused'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'LuminaGuard audit rows are append-only: DELETE refused'); END;
CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head WHEN NEW.last_id <= OLD.last_id
  BEGIN SELECT RAISE(ABORT, 'the LuminaGuard audit head only moves forward'); END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
  BEGIN SELECT RAISE(ABORT, 'the LuminaGuard audit head cannot be deleted'); END;
`;

function tableNames(db: DatabaseSync): Set<string> {
  const rows = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
  return new Set(rows.map((r) => r.name));
}

/**
 * Make sure the open file is a LuminaGuard audit log this version can read,
 * creating the tables in an empty file (unless read-only).
 */
export function ensureSchema(db: DatabaseSync, path: string, headPath: string, readOnly: boolean): void {
  if (!tableNames(db).has("audit_meta")) {
    if (readOnly) throw notOurs(path, "it has no LuminaGuard audit tables");
    // IMMEDIATE: a second process opening the same new file waits here, then sees the tables.
    db.exec("BEGIN IMMEDIATE");
    try {
      const tables = tableNames(db);
      if (!tables.has("audit_meta")) {
        if (tables.size > 0) throw notOurs(path, `it holds other tables (${[...tables].slice(0, 5).join(", ")})`);
        db.exec(CREATE);
        const meta = db.prepare("INSERT INTO audit_meta (key, value) VALUES (?, ?)");
        meta.run("format", FORMAT);
        meta.run("schema_version", String(SCHEMA_VERSION));
        meta.run("created_at", new Date().toISOString());
        db.prepare("INSERT INTO audit_head (k, last_id, hash) VALUES (1, 0, ?)").run(GENESIS);
        writeHeadFile(headPath, { lastId: 0, hash: GENESIS });
      }
      db.exec("COMMIT");
    } catch (err) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw err;
    }
  }
  const meta = new Map((db.prepare("SELECT key, value FROM audit_meta").all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
  if (meta.get("format") !== FORMAT) throw notOurs(path, "its audit_meta table does not name the LuminaGuard audit format");
  const version = Number(meta.get("schema_version"));
  if (!Number.isSafeInteger(version) || version < 1) throw notOurs(path, `its schema version ${JSON.stringify(meta.get("schema_version"))} is not valid`);
  if (version > SCHEMA_VERSION) {
    throw new AuditError(
      "E_AUDIT_CORRUPT",
      `The audit log ${path} was written by a newer LuminaGuard (schema version ${version}; this one reads up to ${SCHEMA_VERSION}). Upgrade LuminaGuard, or point audit.path / --db at another file.`,
      { details: { path, version, supported: SCHEMA_VERSION } },
    );
  }
  for (const t of ["audit_log", "audit_head"]) if (!tableNames(db).has(t)) throw notOurs(path, `its ${t} table is missing`);
}

function notOurs(path: string, why: string): AuditError {
  return new AuditError("E_AUDIT_CORRUPT", `${path} is not a LuminaGuard audit log (${why}). Point audit.path or --db at the right file, or move this one away.`, {
    details: { path },
  });
}
