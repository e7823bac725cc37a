import { createHash } from "node:crypto";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AuditStore } from "../../src/approval/audit/store.js";
import { GENESIS } from "../../src/approval/audit/chain.js";
import { auditPath, auditSchema, redactPatterns } from "../../src/approval/audit/config.js";
import { DEFAULT_REDACT } from "../../src/approval/audit/redact.js";
import { entry, tempLog } from "./audit-fixtures.js";

let t: ReturnType<typeof tempLog>;
let store: AuditStore | undefined;
beforeEach(() => {
  t = tempLog();
});
afterEach(() => {
  store?.close();
  store = undefined;
  t.cleanup();
});

describe("AuditStore open", () => {
  it("creates the folder 0700, the file and head file 0600, in WAL mode", () => {
    store = AuditStore.open(t.db);
    expect(statSync(join(t.dir, "state")).mode & 0o777).toBe(0o700);
    expect(statSync(t.db).mode & 0o777).toBe(0o600);
    expect(statSync(`${t.db}.head`).mode & 0o777).toBe(0o600);
    const other = new DatabaseSync(t.db);
    expect(other.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    other.close();
  });

  it("refuses a file that is not SQLite, or SQLite that is not ours, with E_AUDIT_CORRUPT", () => {
    const junk = join(t.dir, "junk.db");
    writeFileSync(junk, "this is not a database at all, just some text that is long enough to have a header".repeat(20));
    expect(() => AuditStore.open(junk)).toThrow(expect.objectContaining({ code: "E_AUDIT_CORRUPT", message: expect.stringContaining(junk) }));
    const foreign = join(t.dir, "foreign.db");
    const f = new DatabaseSync(foreign);
    f.exec("CREATE TABLE users (name TEXT)");
    f.close();
    expect(() => AuditStore.open(foreign)).toThrow(expect.objectContaining({ code: "E_AUDIT_CORRUPT", message: expect.stringContaining("users") }));
  });

  it("refuses a log written by a newer schema version, saying to upgrade", () => {
    AuditStore.open(t.db).close();
    const c = new DatabaseSync(t.db);
    c.exec("UPDATE audit_meta SET value = '99' WHERE key = 'schema_version'");
    c.close();
    expect(() => AuditStore.open(t.db)).toThrow(expect.objectContaining({ code: "E_AUDIT_CORRUPT", message: expect.stringMatching(/newer LuminaGuard.*99.*Upgrade/) }));
  });

  it("says E_AUDIT_OPEN with the path when it cannot create the file", () => {
    const blocker = join(t.dir, "a-file");
    writeFileSync(blocker, "");
    const bad = join(blocker, "sub", "audit.db");
    expect(() => AuditStore.open(bad)).toThrow(expect.objectContaining({ code: "E_AUDIT_OPEN", message: expect.stringContaining(bad) }));
    expect(() => AuditStore.open(join(t.dir, "missing.db"), { readOnly: true })).toThrow(expect.objectContaining({ code: "E_AUDIT_OPEN", message: expect.stringMatching(/No audit log at/) }));
    expect(existsSync(join(t.dir, "missing.db"))).toBe(false);
  });

  it("keeps rows across reopen and continues the chain", () => {
    store = AuditStore.open(t.db);
    const first = store.append(entry(1));
    store.close();
    store = AuditStore.open(t.db);
    const second = store.append(entry(2));
    expect(second.id).toBe(2);
    expect(second.prevHash).toBe(first.hash);
    expect(store.verify()).toMatchObject({ ok: true, rows: 2 });
  });

  it("a read-only store reads but refuses to append", () => {
    AuditStore.open(t.db).append(entry(1));
    store = AuditStore.open(t.db, { readOnly: true });
    expect(store.get(1)?.server).toBe("mail");
    expect(() => store!.append(entry(2))).toThrow(expect.objectContaining({ code: "E_AUDIT_WRITE" }));
  });
});

describe("AuditStore append/get/list", () => {
  it("chains rows: prev_hash is the previous hash, hash = sha256(prev + newline + canonical content)", () => {
    store = AuditStore.open(t.db);
    const a = store.append(entry(1, { time: new Date("2025-01-01T00:00:01.000Z"), args: { z: 1, a: "x" } }));
    expect(a.id).toBe(1);
    expect(a.prevHash).toBe(GENESIS);
    // Written out by hand, keys sorted, so a change to the hashed format breaks this test.
    const content =
      '{"args":"{\\"a\\":\\"x\\",\\"z\\":1}","argsHash":"' + "0".repeat(63) + '1","argsTruncated":false,"decidedBy":"terminal:alice","decision":"approved",' +
      '"error":null,"id":1,"latencyMs":2.5,"reason":"reason 1","resultBytes":101,"risk":"high","rule":"verb:write","server":"mail","session":"s1",' +
      '"time":"2025-01-01T00:00:01.000Z","tool":"send","verdict":"red"}';
    expect(a.hash).toBe(createHash("sha256").update(`${GENESIS}\n${content}`).digest("hex"));
    const b = store.append(entry(2));
    expect(b.prevHash).toBe(a.hash);
    expect(store.get(1)).toEqual(a);
    expect(store.get(2)).toEqual(b);
    expect(store.get(3)).toBeUndefined();
  });

  it("fills defaults: time now, session null", () => {
    store = AuditStore.open(t.db);
    const before = Date.now();
    const r = store.append({ ...entry(1), time: undefined, session: undefined });
    expect(Date.parse(r.time)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(r.time)).toBeLessThanOrEqual(Date.now());
    expect(r.session).toBeNull();
  });

  it("refuses malformed entries and writes nothing", () => {
    store = AuditStore.open(t.db);
    expect(() => store!.append({ ...entry(1), verdict: "blue" as "red" })).toThrow(expect.objectContaining({ code: "E_AUDIT_WRITE", message: expect.stringContaining("verdict") }));
    expect(() => store!.append({ ...entry(1), latencyMs: Number.NaN })).toThrow(expect.objectContaining({ code: "E_AUDIT_WRITE" }));
    expect(() => store!.append({ ...entry(1), server: "" })).toThrow(expect.objectContaining({ code: "E_AUDIT_WRITE" }));
    expect(store.list()).toEqual([]);
    expect(store.append(entry(1)).id).toBe(1);
  });

  it("lists newest first with limit, offset, beforeId and filters", () => {
    store = AuditStore.open(t.db);
    for (let i = 1; i <= 30; i++) store.append(entry(i));
    expect(store.list().map((r) => r.id)).toEqual(Array.from({ length: 30 }, (_, i) => 30 - i));
    expect(store.list({ limit: 3 }).map((r) => r.id)).toEqual([30, 29, 28]);
    expect(store.list({ limit: 3, offset: 3 }).map((r) => r.id)).toEqual([27, 26, 25]);
    expect(store.list({ limit: 2, beforeId: 10 }).map((r) => r.id)).toEqual([9, 8]);
    expect(store.list({ server: "fs" }).every((r) => r.server === "fs")).toBe(true);
    expect(store.list({ server: "fs" })).toHaveLength(15);
    expect(store.list({ server: "mail", tool: "write_file" })).toEqual([]);
    expect(store.list({ decision: "denied" }).map((r) => r.id)).toEqual([25, 20, 10, 5]);
    expect(store.list({ since: new Date(Date.UTC(2025, 0, 1, 0, 0, 28)) }).map((r) => r.id)).toEqual([30, 29, 28]);
    expect(store.list({ session: "nope" })).toEqual([]);
  });

  it("exports oldest first, lazily", () => {
    store = AuditStore.open(t.db);
    for (let i = 1; i <= 5; i++) store.append(entry(i));
    expect([...store.exportAll()].map((r) => r.id)).toEqual([1, 2, 3, 4, 5]);
    const it = store.exportAll()[Symbol.iterator]();
    expect(it.next().value?.id).toBe(1);
    it.return?.();
    // The early stop released the statement: the store is still usable.
    expect(store.append(entry(6)).id).toBe(6);
  });

  it("the store's own connection cannot UPDATE or DELETE rows (triggers)", () => {
    store = AuditStore.open(t.db);
    store.append(entry(1));
    const db = (store as unknown as { db: DatabaseSync }).db;
    expect(() => db.exec("UPDATE audit_log SET reason = 'x' WHERE id = 1")).toThrow(/append-only/);
    expect(() => db.exec("DELETE FROM audit_log WHERE id = 1")).toThrow(/append-only/);
    expect(() => db.exec("UPDATE audit_head SET last_id = 0")).toThrow(/only moves forward/);
    expect(store.get(1)?.reason).toBe("reason 1");
    expect(store.verify().ok).toBe(true);
  });

  it("verifies an untouched log of 1,000 rows", () => {
    store = AuditStore.open(t.db);
    for (let i = 1; i <= 1000; i++) store.append(entry(i));
    expect(store.verify()).toEqual({ ok: true, rows: 1000, problems: [], moreProblems: 0 });
  });
});

describe("audit config", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("adds configured redact patterns to the defaults and leaves path to the caller", () => {
    expect(auditSchema.parse({})).toEqual({ redact: [] });
    expect(redactPatterns(auditSchema.parse({}))).toEqual([...DEFAULT_REDACT]);
    expect(auditSchema.parse({ path: "/x/a.db", redact: ["*pin*"] })).toEqual({ path: "/x/a.db", redact: ["*pin*"] });
    expect(redactPatterns(auditSchema.parse({ redact: ["*pin*"] }))).toEqual([...DEFAULT_REDACT, "*pin*"]);
    expect(auditSchema.safeParse({ path: "" }).success).toBe(false);
    expect(auditSchema.safeParse({ extra: 1 }).success).toBe(false);
  });

  it("resolves the default path from LUMINAGUARD_STATE_DIR, XDG_STATE_HOME, then ~/.local/state", () => {
    vi.stubEnv("LUMINAGUARD_STATE_DIR", "/st");
    vi.stubEnv("XDG_STATE_HOME", "/xdg");
    expect(auditPath()).toBe("/st/audit.db");
    vi.stubEnv("LUMINAGUARD_STATE_DIR", "");
    expect(auditPath()).toBe("/xdg/luminaguard/audit.db");
    vi.stubEnv("XDG_STATE_HOME", "");
    vi.stubEnv("HOME", "/home/u");
    expect(auditPath()).toBe("/home/u/.local/state/luminaguard/audit.db");
  });
});

