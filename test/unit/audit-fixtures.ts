/** Shared helpers of the audit-*.test.ts files (not a test file itself). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { AuditEntryInput } from "../../src/approval/audit/types.js";

/** A fresh temp folder and its audit db path; call cleanup() in afterEach. */
export function tempLog(): { dir: string; db: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "lg-audit-test-"));
  return { dir, db: join(dir, "state", "audit.db"), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A plausible entry; `i` makes rows distinguishable. */
export function entry(i: number, over: Partial<AuditEntryInput> = {}): AuditEntryInput {
  return {
    time: new Date(Date.UTC(2025, 0, 1, 0, 0, i)),
    server: i % 2 === 0 ? "fs" : "mail",
    tool: i % 2 === 0 ? "write_file" : "send",
    verdict: i % 3 === 0 ? "green" : "red",
    risk: i % 3 === 0 ? "low" : "high",
    reason: `reason ${i}`,
    rule: "verb:write",
    argsHash: i.toString(16).padStart(64, "0"),
    args: { path: `/workspace/f${i}.txt`, content: `line ${i}` },
    decision: i % 3 === 0 ? "auto" : i % 5 === 0 ? "denied" : "approved",
    decidedBy: i % 3 === 0 ? null : "terminal:alice",
    latencyMs: 1.5 + i,
    resultBytes: i % 5 === 0 ? null : 100 + i,
    error: i % 7 === 0 ? `boom ${i}` : null,
    session: "s1",
    ...over,
  };
}

/**
 * A second connection to the file, as someone editing it with another tool would
 * open it: the append-only triggers dropped first.
 */
export function attacker(db: string): DatabaseSync {
  const conn = new DatabaseSync(db);
  conn.exec("DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete; DROP TRIGGER IF EXISTS audit_head_forward; DROP TRIGGER IF EXISTS audit_head_no_delete;");
  return conn;
}
