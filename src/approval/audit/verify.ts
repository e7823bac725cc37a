/**
 * Walking the chain. Verify finds and names, by row id: rows whose content no
 * longer matches their hash (edited), ids missing in the sequence (deleted),
 * rows that do not follow their predecessor (an edit hidden by recomputing that
 * row's hash breaks the next link), and a chain that ends before its two head
 * records say it should (newest rows cut off).
 *
 * What it cannot see: someone who deletes the database and its head file
 * together (there is nothing left to compare); someone who rewrites the whole
 * chain from an edited row onwards and also both head records (the head table and
 * `<db>.head`). Against that, copy the head (or exported rows) somewhere the
 * attacker cannot write, e.g. a log shipper; the chain then proves the rest.
 */
import type { DatabaseSync } from "node:sqlite";
import { GENESIS, rowHash, shortHash } from "./chain.js";
import { APPEND_ONLY_TRIGGERS } from "./ddl.js";
import { readHeadFile, type Head } from "./head.js";
import { COLUMNS, chainFields, type RawRow } from "./rows.js";
import type { VerifyProblem, VerifyResult } from "./types.js";

const MAX_PROBLEMS = 1000;

/** How often to re-read a head file that is ahead of the rows (another process may be mid-append). */
const HEAD_RETRIES = 5;
const HEAD_RETRY_MS = 10;

const range = (from: number, to: number): string => (from === to ? `row ${from} is` : `rows ${from}..${to} are`);

/** Walk every row oldest first and compare the end of the chain with both head records. */
export function verifyLog(db: DatabaseSync, headPath: string): VerifyResult {
  const problems: VerifyProblem[] = [];
  let moreProblems = 0;
  const report = (p: VerifyProblem): void => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
    else moreProblems++;
  };

  const triggers = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all() as { name: string }[]).map((r) => r.name));
  for (const t of APPEND_ONLY_TRIGGERS) {
    if (!triggers.has(t)) report({ id: 0, kind: "schema-altered", message: `the append-only trigger ${t} is missing: the file was changed outside LuminaGuard` });
  }

  let rows = 0;
  let lastId = 0;
  let lastHash = GENESIS;
  let table: Head | undefined;
  // One read transaction: the walk and the head table come from the same snapshot while others keep appending.
  db.exec("BEGIN");
  try {
    const byHash = db.prepare("SELECT id FROM audit_log WHERE hash = ? LIMIT 1");
    for (const raw of db.prepare(`SELECT ${COLUMNS} FROM audit_log ORDER BY id`).iterate() as Iterable<RawRow>) {
      rows++;
      const fields = chainFields(raw);
      const id = fields.id;
      const stored = String(raw.hash);
      const prev = String(raw.prev_hash);
      if (rowHash(prev, fields) !== stored) report({ id, kind: "edited", message: `row ${id} was edited: its content no longer matches its hash` });
      if (id !== lastId + 1) {
        report({ id, kind: "deleted-before", message: `${range(lastId + 1, id - 1)} missing before row ${id} (deleted, or never committed)` });
      } else if (prev !== lastHash) {
        const other = byHash.get(prev) as { id: number } | undefined;
        if (other && other.id !== lastId) {
          report({ id, kind: "reordered", message: `row ${id} claims to follow row ${other.id}, not row ${lastId}: rows were moved` });
        } else {
          const before = lastId === 0 ? "the start of the log" : `row ${lastId}'s hash ${shortHash(lastHash)}`;
          report({
            id,
            kind: "chain-broken",
            message: `row ${id} does not follow row ${lastId}: its prev_hash ${shortHash(prev)} is not ${before}${lastId === 0 ? "" : ` (row ${lastId} was edited and its hash recomputed, or row ${id}'s prev_hash was changed)`}`,
          });
        }
      }
      lastId = id;
      lastHash = stored;
    }
    const t = db.prepare("SELECT last_id, hash FROM audit_head WHERE k = 1").get() as { last_id: number; hash: string } | undefined;
    if (t) table = { lastId: Number(t.last_id), hash: String(t.hash) };
  } finally {
    db.exec("COMMIT");
  }

  const end: Head = { lastId, hash: lastHash };
  if (!table) report({ id: 0, kind: "head-mismatch", message: "the head table has no record: it was emptied outside LuminaGuard" });
  else compareHead("the head table", table, end, report);
  compareHeadFile(db, headPath, end, report);
  return { ok: problems.length === 0 && moreProblems === 0, rows, problems, moreProblems };
}

/** Report how a head record differs from where the chain actually ends. */
function compareHead(what: string, head: Head, end: Head, report: (p: VerifyProblem) => void): void {
  if (head.lastId > end.lastId) {
    report({ id: end.lastId + 1, kind: "head-mismatch", message: `${what} records row ${head.lastId} as the newest, but the log ends at row ${end.lastId}: ${range(end.lastId + 1, head.lastId)} missing (the newest rows were deleted)` });
  } else if (head.lastId < end.lastId) {
    report({ id: head.lastId + 1, kind: "head-mismatch", message: `${what} records row ${head.lastId} as the newest, but the log goes on to row ${end.lastId}: rows after ${head.lastId} were added outside LuminaGuard, or the head was rolled back` });
  } else if (head.hash !== end.hash) {
    report({ id: end.lastId, kind: "head-mismatch", message: `${what} records hash ${shortHash(head.hash)} for row ${head.lastId}, but that row's hash is ${shortHash(end.hash)}: the newest row was replaced` });
  }
}

/**
 * The head file is read outside the snapshot, so an append by another process can
 * put it ahead of the rows we walked; that is fine when the row it names now exists
 * with that hash. Appenders write it just before COMMIT, so re-read a few times.
 */
function compareHeadFile(db: DatabaseSync, headPath: string, end: Head, report: (p: VerifyProblem) => void): void {
  const rowHashAt = db.prepare("SELECT hash FROM audit_log WHERE id = ?");
  for (let attempt = 0; ; attempt++) {
    const file = readHeadFile(headPath);
    if (file.state === "missing") {
      report({ id: 0, kind: "head-mismatch", message: `the head file ${headPath} is missing: it was deleted, so cut-off newest rows could go unseen` });
      return;
    }
    if (file.state === "unreadable") {
      report({ id: 0, kind: "head-mismatch", message: `the head file ${headPath} cannot be read (${file.reason})` });
      return;
    }
    const head = file.head;
    if (head.lastId > end.lastId) {
      const now = rowHashAt.get(head.lastId) as { hash: string } | undefined;
      if (now && now.hash === head.hash) return;
      if (attempt < HEAD_RETRIES) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, HEAD_RETRY_MS);
        continue;
      }
    }
    compareHead(`the head file ${headPath}`, head, end, report);
    return;
  }
}
