/**
 * Tampering done the way an attacker would: a second connection to the file,
 * the append-only triggers dropped first, then rows edited or deleted.
 */
import { rmSync, writeFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditStore } from "../../src/approval/audit/store.js";
import { rowHash } from "../../src/approval/audit/chain.js";
import { chainFields, COLUMNS, type RawRow } from "../../src/approval/audit/rows.js";
import type { VerifyProblem } from "../../src/approval/audit/types.js";
import { attacker, entry, tempLog } from "./audit-fixtures.js";

let t: ReturnType<typeof tempLog>;
let store: AuditStore;
const ROWS = 20;

beforeEach(() => {
  t = tempLog();
  store = AuditStore.open(t.db);
  for (let i = 1; i <= ROWS; i++) store.append(entry(i));
});
afterEach(() => {
  store.close();
  t.cleanup();
});

/** Problems other than the dropped-trigger notice every tampering here leaves. */
function rowProblems(): VerifyProblem[] {
  const r = store.verify();
  expect(r.ok).toBe(false);
  expect(r.problems).toContainEqual(expect.objectContaining({ id: 0, kind: "schema-altered" }));
  return r.problems.filter((p) => p.kind !== "schema-altered");
}

/** Recompute one row's hash over its current content, as someone hiding an edit would. */
function rehash(conn: ReturnType<typeof attacker>, id: number): void {
  const raw = conn.prepare(`SELECT ${COLUMNS} FROM audit_log WHERE id = ?`).get(id) as RawRow;
  conn.prepare("UPDATE audit_log SET hash = ? WHERE id = ?").run(rowHash(String(raw.prev_hash), chainFields(raw)), id);
}

describe("verify names the tampered row", () => {
  it("an edited row's args: names that id, and only that id", () => {
    const conn = attacker(t.db);
    conn.prepare("UPDATE audit_log SET args = ? WHERE id = 7").run('{"path":"/innocent"}');
    conn.close();
    expect(rowProblems()).toEqual([{ id: 7, kind: "edited", message: expect.stringContaining("row 7 was edited") }]);
  });

  it("an edited decision is seen as well (every content field is hashed)", () => {
    const conn = attacker(t.db);
    conn.prepare("UPDATE audit_log SET decision = 'approved', decided_by = 'terminal:alice' WHERE id = 5").run();
    conn.close();
    expect(rowProblems()).toEqual([expect.objectContaining({ id: 5, kind: "edited" })]);
  });

  it("a deleted middle row: names the gap", () => {
    const conn = attacker(t.db);
    conn.exec("DELETE FROM audit_log WHERE id = 10");
    conn.close();
    expect(rowProblems()).toEqual([{ id: 11, kind: "deleted-before", message: expect.stringContaining("row 10 is missing before row 11") }]);
  });

  it("deleted rows at the start: names the range", () => {
    const conn = attacker(t.db);
    conn.exec("DELETE FROM audit_log WHERE id <= 3");
    conn.close();
    expect(rowProblems()).toEqual([expect.objectContaining({ id: 4, kind: "deleted-before", message: expect.stringContaining("rows 1..3 are missing") })]);
  });

  it("an edit hidden by recomputing the row's hash: names the next row (and the edited one in the message)", () => {
    const conn = attacker(t.db);
    conn.prepare("UPDATE audit_log SET args = ? WHERE id = 12").run('{"path":"/innocent"}');
    rehash(conn, 12);
    conn.close();
    expect(rowProblems()).toEqual([{ id: 13, kind: "chain-broken", message: expect.stringMatching(/row 13 does not follow row 12.*row 12 was edited and its hash recomputed/) }]);
  });

  it("a row pointed at an earlier row: reordered", () => {
    const conn = attacker(t.db);
    const h3 = (conn.prepare("SELECT hash FROM audit_log WHERE id = 3").get() as { hash: string }).hash;
    conn.prepare("UPDATE audit_log SET prev_hash = ? WHERE id = 5").run(h3);
    rehash(conn, 5);
    conn.close();
    const problems = rowProblems();
    expect(problems).toContainEqual({ id: 5, kind: "reordered", message: expect.stringContaining("row 5 claims to follow row 3, not row 4") });
    expect(problems).toContainEqual(expect.objectContaining({ id: 6, kind: "chain-broken" }));
  });

  it("the newest 3 rows deleted and the head table fixed: the head file names what is missing", () => {
    const conn = attacker(t.db);
    conn.exec(`DELETE FROM audit_log WHERE id > ${ROWS - 3}`);
    const last = conn.prepare("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").get() as { id: number; hash: string };
    conn.prepare("UPDATE audit_head SET last_id = ?, hash = ?").run(last.id, last.hash);
    conn.close();
    expect(rowProblems()).toEqual([{ id: 18, kind: "head-mismatch", message: expect.stringMatching(/head file .* records row 20 .* ends at row 17: rows 18\.\.20 are missing/) }]);
  });

  it("the newest rows deleted without fixing anything: both head records name it", () => {
    const conn = attacker(t.db);
    conn.exec(`DELETE FROM audit_log WHERE id > ${ROWS - 2}`);
    conn.close();
    const problems = rowProblems();
    expect(problems).toHaveLength(2);
    expect(problems.map((p) => p.message)).toEqual([expect.stringMatching(/^the head table .*rows 19\.\.20 are missing/), expect.stringMatching(/^the head file .*rows 19\.\.20 are missing/)]);
  });

  it("the newest row replaced (same id, new hash) shows against both heads", () => {
    const conn = attacker(t.db);
    conn.prepare("UPDATE audit_log SET reason = 'nothing to see' WHERE id = ?").run(ROWS);
    rehash(conn, ROWS);
    conn.close();
    const problems = rowProblems();
    expect(problems).toEqual([
      expect.objectContaining({ id: ROWS, kind: "head-mismatch", message: expect.stringContaining("the newest row was replaced") }),
      expect.objectContaining({ id: ROWS, kind: "head-mismatch", message: expect.stringContaining("the newest row was replaced") }),
    ]);
  });

  it("a missing or garbled head file is reported", () => {
    rmSync(store.headPath);
    expect(store.verify()).toMatchObject({ ok: false, problems: [expect.objectContaining({ kind: "head-mismatch", message: expect.stringContaining("is missing") })] });
    writeFileSync(store.headPath, "{}");
    expect(store.verify()).toMatchObject({ ok: false, problems: [expect.objectContaining({ kind: "head-mismatch", message: expect.stringContaining("cannot be read") })] });
  });

  it("appending after the newest rows were cut off keeps the gap visible", () => {
    const conn = attacker(t.db);
    conn.exec(`DELETE FROM audit_log WHERE id > ${ROWS - 3}`);
    const last = conn.prepare("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").get() as { id: number; hash: string };
    conn.prepare("UPDATE audit_head SET last_id = ?, hash = ?").run(last.id, last.hash);
    conn.close();
    const next = store.append(entry(99));
    expect(next.id).toBe(ROWS + 1);
    expect(rowProblems()).toEqual([expect.objectContaining({ id: ROWS + 1, kind: "deleted-before", message: expect.stringContaining("rows 18..20 are missing") })]);
  });

  it("dropped triggers alone are reported as schema-altered", () => {
    attacker(t.db).close();
    const r = store.verify();
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => p.kind)).toEqual(["schema-altered", "schema-altered"]);
  });
});
