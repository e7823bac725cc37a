import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { auditCommand } from "../../src/cli/audit.js";
import { AuditStore } from "../../src/approval/audit/store.js";
import type { AuditRow, VerifyResult } from "../../src/approval/audit/types.js";
import { attacker, entry, tempLog } from "./audit-fixtures.js";

let t: ReturnType<typeof tempLog>;
let out: string;
let err: string;

beforeEach(() => {
  t = tempLog();
  const store = AuditStore.open(t.db);
  for (let i = 1; i <= 6; i++) store.append(entry(i, i === 3 ? { args: { to: "bob", password: "hunter2" } } : {}));
  store.close();
  out = "";
  err = "";
  vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
  t.cleanup();
});

/** Run `audit <args...>` as the real CLI would: under a program with positional options. */
async function audit(...args: string[]): Promise<void> {
  const program = new Command("luminaguard").enablePositionalOptions().exitOverride().addCommand(auditCommand());
  await program.parseAsync(["node", "luminaguard", "audit", ...args]);
}

describe("luminaguard audit list", () => {
  it("prints a table newest first, with the call, decision, latency and error", async () => {
    await audit("list", "--db", t.db);
    const lines = out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+TIME \(UTC\)\s+CALL\s+VERDICT\s+DECISION\s+BY\s+LATENCY\s+ERROR$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(["6", "5", "4", "3", "2", "1"]);
    expect(lines[1]).toMatch(/^6\s+2025-01-01 00:00:06\s+fs__write_file\s+green\s+auto\s+-\s+7\.5ms$/);
    expect(lines[2]).toMatch(/5\s+.*mail__send\s+red\s+denied\s+terminal:alice/);
    expect(process.exitCode).toBeUndefined();
  });

  it("--json prints the rows; filters and --limit apply; --db also works before the subcommand", async () => {
    await audit("--db", t.db, "list", "--server", "mail", "--limit", "2", "--json");
    const rows = JSON.parse(out) as AuditRow[];
    expect(rows.map((r) => [r.id, r.server])).toEqual([
      [5, "mail"],
      [3, "mail"],
    ]);
    expect(rows[1]!.args).toEqual({ to: "bob", password: "[REDACTED]" });
  });

  it("reads audit.path from the config file when there is no --db", async () => {
    const config = join(t.dir, "config.json");
    writeFileSync(config, JSON.stringify({ audit: { path: t.db } }));
    await audit("list", "--config", config, "--decision", "denied", "--json");
    expect((JSON.parse(out) as AuditRow[]).map((r) => r.id)).toEqual([5]);
    writeFileSync(config, JSON.stringify({ audit: { path: 5 } }));
    await expect(audit("list", "--config", config)).rejects.toMatchObject({ code: "E_CONFIG", message: expect.stringContaining("audit.path") });
  });

  it("rejects a bad --limit and a missing log clearly", async () => {
    await expect(audit("list", "--db", t.db, "--limit", "0")).rejects.toMatchObject({ code: "E_USAGE" });
    await expect(audit("list", "--db", join(t.dir, "nope.db"))).rejects.toMatchObject({ code: "E_AUDIT_OPEN", message: expect.stringContaining("nope.db") });
  });
});

describe("luminaguard audit show", () => {
  it("prints every field and the pretty, redacted args", async () => {
    await audit("show", "3", "--db", t.db);
    for (const field of ["id:", "time:", "server:", "tool:", "verdict:", "risk:", "reason:", "rule:", "decision:", "decided by:", "latency:", "result bytes:", "error:", "session:", "args hash:", "prev hash:", "hash:"]) {
      expect(out).toMatch(new RegExp(`^${field}`, "m"));
    }
    expect(out).toContain('args:\n  {\n    "password": "[REDACTED]",\n    "to": "bob"\n  }');
    expect(out).not.toContain("hunter2");
  });

  it("--json prints the row as stored", async () => {
    await audit("show", "2", "--json", "--db", t.db);
    const store = AuditStore.open(t.db, { readOnly: true });
    expect(JSON.parse(out)).toEqual(store.get(2));
    store.close();
  });

  it("an unknown id exits 1 with E_AUDIT_NOT_FOUND", async () => {
    await audit("show", "99", "--db", t.db);
    expect(process.exitCode).toBe(1);
    expect(err).toContain("no row 99");
    expect(err).toContain("E_AUDIT_NOT_FOUND");
  });
});

describe("luminaguard audit verify", () => {
  it("says OK and exits 0 on an untouched log", async () => {
    await audit("verify", "--db", t.db);
    expect(out).toBe("audit log OK: 6 rows, chain intact, head matches\n");
    expect(process.exitCode).toBeUndefined();
  });

  it("exits 1 and names the edited row after tampering", async () => {
    const conn = attacker(t.db);
    conn.exec("UPDATE audit_log SET decision = 'denied' WHERE id = 4");
    conn.close();
    await audit("verify", "--db", t.db);
    expect(process.exitCode).toBe(1);
    expect(out).toMatch(/FAILED verification: 6 rows/);
    expect(out).toMatch(/row 4 {2}edited: row 4 was edited/);
  });

  it("--json gives the result object", async () => {
    const conn = attacker(t.db);
    conn.exec("DELETE FROM audit_log WHERE id = 2");
    conn.close();
    await audit("verify", "--json", "--db", t.db);
    const r = JSON.parse(out) as VerifyResult;
    expect(r.ok).toBe(false);
    expect(r.problems).toContainEqual(expect.objectContaining({ id: 3, kind: "deleted-before" }));
    expect(process.exitCode).toBe(1);
  });
});

describe("luminaguard audit export", () => {
  it("streams JSON Lines to stdout, oldest first", async () => {
    await audit("export", "--json", "--db", t.db);
    const rows = out.trimEnd().split("\n").map((l) => JSON.parse(l) as AuditRow);
    expect(rows.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(rows[2]!.args).toEqual({ to: "bob", password: "[REDACTED]" });
  });

  it("--out writes a 0600 file", async () => {
    const file = join(t.dir, "export.jsonl");
    await audit("export", "--json", "--out", file, "--db", t.db);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    expect(lines).toHaveLength(6);
    expect((JSON.parse(lines[5]!) as AuditRow).id).toBe(6);
    expect(err).toContain("exported 6 rows");
    await expect(audit("export", "--out", join(t.dir, "no", "such", "dir.jsonl"), "--db", t.db)).rejects.toMatchObject({ code: "E_USAGE" });
  });
});
