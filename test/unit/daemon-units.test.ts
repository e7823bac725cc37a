/** Unit tests of the daemon's pieces: rate limiter, webhook signatures, dead letters, events, exec chunk encoding. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RateLimiter } from "../../src/daemon/rate-limit.js";
import { signBody, verifySignature } from "../../src/daemon/webhooks/sign.js";
import { DeadLetters } from "../../src/daemon/webhooks/dead-letters.js";
import { EventBus, eventMatches } from "../../src/daemon/events.js";
import { encodeChunk } from "../../src/daemon/routes/exec-stream.js";
import { errorBody, httpStatusFor, DaemonError } from "../../src/daemon/errors.js";
import { ApprovalError } from "../../src/approval/errors.js";

const limits = { api: { perSecond: 2, burst: 3 }, sandboxSpawn: { perSecond: 0.5, burst: 1 }, approval: { perSecond: 1, burst: 1 } };

describe("RateLimiter", () => {
  it("allows a burst, then refuses with Retry-After until tokens refill", () => {
    let now = 0;
    const rl = new RateLimiter(limits, { now: () => now });
    expect([rl.take("a", "api"), rl.take("a", "api"), rl.take("a", "api")].every((d) => d.ok)).toBe(true);
    const refused = rl.take("a", "api");
    expect(refused).toEqual({ ok: false, retryAfterSeconds: 1 });
    now += 499;
    expect(rl.take("a", "api").ok).toBe(false);
    now += 2;
    expect(rl.take("a", "api").ok).toBe(true);
  });

  it("keeps clients and kinds apart", () => {
    const rl = new RateLimiter(limits, { now: () => 0 });
    expect(rl.take("local", "sandboxSpawn").ok).toBe(true);
    const second = rl.take("local", "sandboxSpawn");
    expect(second).toEqual({ ok: false, retryAfterSeconds: 2 });
    expect(rl.take("tcp:127.0.0.1", "sandboxSpawn").ok).toBe(true);
    expect(rl.take("local", "api").ok).toBe(true);
  });

  it("forgets buckets that have refilled, so the map stays bounded", () => {
    let now = 0;
    const rl = new RateLimiter(limits, { now: () => now });
    for (let i = 0; i < 100; i++) rl.take(`c${i}`, "api");
    expect(rl.size).toBe(100);
    now += 61_000;
    rl.take("x", "api");
    expect(rl.size).toBe(1);
  });
});

describe("webhook signatures", () => {
  const secret = "0123456789abcdef-secret";
  it("is sha256=<hex HMAC> of the exact body and verifies only that body and secret", () => {
    const body = JSON.stringify({ event: "task.finished", data: { a: 1 } });
    const sig = signBody(secret, body);
    // Known answer from an independent implementation (openssl dgst -sha256 -hmac).
    expect(signBody("key", "The quick brown fox jumps over the lazy dog")).toBe("sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    expect(sig).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifySignature(secret, body, sig)).toBe(true);
    expect(verifySignature(secret, `${body} `, sig)).toBe(false);
    expect(verifySignature("another-secret-123456", body, sig)).toBe(false);
    expect(verifySignature(secret, body, undefined)).toBe(false);
    expect(verifySignature(secret, body, "sha256=00")).toBe(false);
  });
});

describe("DeadLetters", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("lists what failed, drops replayed ones, finds by unique prefix", () => {
    dir = mkdtempSync(join(tmpdir(), "lg-dl-"));
    const dl = new DeadLetters(join(dir, "state", "dl.jsonl"));
    expect(dl.list()).toEqual([]);
    const base = { url: "http://127.0.0.1:1/hook", event: "task.finished", body: "{}", attempts: 3, lastError: "refused", failedAt: new Date().toISOString() };
    dl.add({ id: "aaaa-1", ...base });
    dl.add({ id: "bbbb-2", ...base });
    expect(dl.list().map((l) => l.id)).toEqual(["aaaa-1", "bbbb-2"]);
    expect(dl.get("bbbb").id).toBe("bbbb-2");
    dl.markReplayed("aaaa-1");
    expect(dl.list().map((l) => l.id)).toEqual(["bbbb-2"]);
    expect(() => dl.get("aaaa")).toThrow(expect.objectContaining({ code: "E_DAEMON_NOT_FOUND" }));
  });
});

describe("EventBus", () => {
  it("matches exact, prefix and wildcard patterns", () => {
    expect(eventMatches("task.*", "task.finished")).toBe(true);
    expect(eventMatches("task.*", "tasks.finished")).toBe(false);
    expect(eventMatches("approval.added", "approval.added")).toBe(true);
    expect(eventMatches("approval.added", "approval.decided")).toBe(false);
    expect(eventMatches("*", "pool.lease")).toBe(true);
  });

  it("delivers to every listener even when one throws, and replays after an id", () => {
    const bus = new EventBus();
    const got: string[] = [];
    bus.subscribe(() => {
      throw new Error("broken listener");
    });
    const stop = bus.subscribe((e) => got.push(e.type));
    const first = bus.publish("a.one", {});
    bus.publish("a.two", {});
    stop();
    bus.publish("a.three", {});
    expect(got).toEqual(["a.one", "a.two"]);
    expect(bus.since(first.id).map((e) => e.type)).toEqual(["a.two", "a.three"]);
  });
});

describe("exec output encoding", () => {
  it("sends UTF-8 as text and keeps a character cut between chunks whole", () => {
    const carry = { bytes: new Uint8Array(0) };
    const euro = Buffer.from("a€b"); // € is 3 bytes
    expect(encodeChunk(euro.subarray(0, 2), carry)).toEqual({ data: "a", encoding: "utf8" });
    expect(encodeChunk(euro.subarray(2), carry)).toEqual({ data: "€b", encoding: "utf8" });
  });

  it("sends bytes that are not UTF-8 as base64", () => {
    const carry = { bytes: new Uint8Array(0) };
    const bin = Uint8Array.from([0xff, 0x00, 0x41]);
    expect(encodeChunk(bin, carry)).toEqual({ data: Buffer.from(bin).toString("base64"), encoding: "base64" });
  });
});

describe("error mapping", () => {
  it("maps codes to HTTP statuses and bodies", () => {
    expect(httpStatusFor(new ApprovalError("E_APPROVAL_HASH_MISMATCH", "x"))).toBe(409);
    expect(httpStatusFor(new DaemonError("E_DAEMON_RATE_LIMITED", "x"))).toBe(429);
    expect(httpStatusFor(new Error("boom"))).toBe(500);
    expect(errorBody(new DaemonError("E_DAEMON_NO_AGENT", "no agent"))).toEqual({ error: { code: "E_DAEMON_NO_AGENT", message: "no agent" } });
    expect(errorBody(new Error("boom")).error.code).toBe("E_DAEMON_INTERNAL");
  });
});
