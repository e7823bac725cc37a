import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditStore } from "../../src/approval/audit/store.js";
import { canonicalJson } from "../../src/approval/audit/canonical.js";
import { DEFAULT_REDACT, keyMatcher, redact, storedArgs } from "../../src/approval/audit/redact.js";
import { entry, tempLog } from "./audit-fixtures.js";

describe("canonicalJson", () => {
  it("sorts keys at every depth, drops undefined members, writes no whitespace", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { y: true, x: null }], c: "s" }, u: undefined })).toBe('{"a":{"c":"s","d":[3,{"x":null,"y":true}]},"b":1}');
    // Integer-like keys are sorted as strings too (JS objects would put "2" before "10").
    expect(canonicalJson({ "10": 1, "2": 2, a: 3 })).toBe('{"10":1,"2":2,"a":3}');
    expect(canonicalJson({ n: Number.NaN, i: Infinity })).toBe('{"i":null,"n":null}');
  });

  it("gives the same text whatever the key order", () => {
    expect(canonicalJson({ x: 1, y: { p: 1, q: 2 } })).toBe(canonicalJson({ y: { q: 2, p: 1 }, x: 1 }));
  });

  it("refuses cycles with E_AUDIT_WRITE", () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(() => canonicalJson(a)).toThrow(expect.objectContaining({ code: "E_AUDIT_WRITE" }));
  });
});

describe("redaction", () => {
  const m = keyMatcher(DEFAULT_REDACT);

  it.each(["password", "DB_PASSWORD", "clientSecret", "access_token", "X_Api_Key", "apikey", "Authorization", "COOKIE", "ssh_private_key"])("redacts %s", (key) => {
    expect(m(key)).toBe(true);
  });

  it.each(["path", "content", "x-authorization", "cookies_enabled", "author", "key"])("keeps %s", (key) => {
    expect(m(key)).toBe(false);
  });

  it("replaces values at any depth (objects inside arrays too) and leaves the input alone", () => {
    const args = { path: "/a", auth: { headers: [{ Authorization: "Bearer abc", accept: "json" }], nested: { db: { password: { deep: "x" } } } }, github_token: "ghp_1" };
    const copy = structuredClone(args);
    expect(redact(args, m)).toEqual({
      path: "/a",
      auth: { headers: [{ Authorization: "[REDACTED]", accept: "json" }], nested: { db: { password: "[REDACTED]" } } },
      github_token: "[REDACTED]",
    });
    expect(args).toEqual(copy);
  });

  it("uses a configured list instead of the defaults, with ? and * globs", () => {
    const custom = keyMatcher(["pin?", "*ssn*"]);
    expect(redact({ pin1: 1, pin12: 2, my_ssn_no: 3, password: 4 }, custom)).toEqual({ pin1: "[REDACTED]", pin12: 2, my_ssn_no: "[REDACTED]", password: 4 });
    // Regex characters in a glob are literal.
    expect(keyMatcher(["a.b"])("axb")).toBe(false);
  });

  it("caps big arguments as valid JSON that says so, within the cap", () => {
    const big = { content: "é\"x".repeat(40_000), password: "hunter2" };
    const s = storedArgs(big, m, 4096);
    expect(s.truncated).toBe(true);
    expect(Buffer.byteLength(s.text)).toBeLessThanOrEqual(4096);
    const parsed = JSON.parse(s.text) as { $truncated: { bytes: number; preview: string } };
    expect(parsed.$truncated.bytes).toBe(Buffer.byteLength(canonicalJson({ ...big, password: "[REDACTED]" })));
    expect(parsed.$truncated.preview.startsWith('{"content":"é\\"x')).toBe(true);
    expect(s.text).not.toContain("hunter2");
    expect(storedArgs({ a: 1 }, m, 4096)).toEqual({ text: '{"a":1}', truncated: false });
  });
});

describe("redaction in the store", () => {
  let t: ReturnType<typeof tempLog>;
  let store: AuditStore;
  beforeEach(() => {
    t = tempLog();
  });
  afterEach(() => {
    store.close();
    t.cleanup();
  });

  it("stores redacted args, keeps the caller's argsHash, and chains over what is stored", () => {
    store = AuditStore.open(t.db);
    const row = store.append(entry(1, { argsHash: "f".repeat(64), args: { to: "bob", smtp: { user: "me", Password: "pw" }, list: [{ api_key: "k" }] } }));
    expect(row.args).toEqual({ to: "bob", smtp: { user: "me", Password: "[REDACTED]" }, list: [{ api_key: "[REDACTED]" }] });
    expect(row.argsHash).toBe("f".repeat(64));
    expect(store.get(1)).toEqual(row);
    expect(JSON.stringify(store.get(1))).not.toContain('"pw"');
    expect(store.verify().ok).toBe(true);
  });

  it("applies the configured redact list", () => {
    store = AuditStore.open(t.db, { redact: ["card*"] });
    const row = store.append(entry(1, { args: { cardNumber: "4111", password: "visible-now" } }));
    expect(row.args).toEqual({ cardNumber: "[REDACTED]", password: "visible-now" });
  });

  it("caps stored args (64 KiB by default) and marks the row truncated", () => {
    store = AuditStore.open(t.db);
    const row = store.append(entry(1, { args: { content: "x".repeat(200_000) } }));
    expect(row.argsTruncated).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(row.args))).toBeLessThanOrEqual(64 * 1024);
    expect((row.args.$truncated as { bytes: number }).bytes).toBe(200_000 + '{"content":""}'.length);
    expect(store.get(1)?.argsTruncated).toBe(true);
    expect(store.verify().ok).toBe(true);
  });

  it("caps a huge error text", () => {
    store = AuditStore.open(t.db);
    const row = store.append(entry(1, { error: "e".repeat(100_000) }));
    expect(row.error!.length).toBeLessThan(17_000);
    expect(row.error).toMatch(/\[truncated\]$/);
  });
});
