import { PassThrough } from "node:stream";
import { describe, expect, it, vi } from "vitest";
import { ElicitationApprover, ELICITATION_SCHEMA, type ElicitFn } from "../../src/approval/approvers/elicitation.js";
import { PolicyApprover } from "../../src/approval/approvers/policy.js";
import { QueueApprover } from "../../src/approval/approvers/queue.js";
import { TerminalApprover } from "../../src/approval/approvers/terminal.js";
import { ApprovalQueue, type QueueEvent } from "../../src/approval/queue.js";
import type { DiffCard } from "../../src/approval/types.js";

const card = (hash = "a".repeat(64), tool = "write_file"): DiffCard => ({
  hash,
  server: "fs",
  tool,
  classification: { verdict: "red", risk: "medium", reason: "tool name verb 'write' writes data", rule: "verb:write" },
  summary: `fs__${tool} would overwrite /workspace/a.txt (+1 −1 lines)`,
  body: { kind: "file-write", path: "/workspace/a.txt", existed: true, diff: "--- a/workspace/a.txt\n+++ b/workspace/a.txt\n@@ -1 +1 @@\n-a\n+b", added: 1, removed: 1, truncated: false, newBytes: 2 },
  createdAt: "2025-01-01T00:00:00.000Z",
});

/** Listeners a reader of the stream adds (PassThrough keeps an internal 'prefinish' of its own). */
const listeners = (s: PassThrough) => ["data", "end", "error", "readable", "close", "keypress"].reduce((n, e) => n + s.listenerCount(e), 0);

describe("PolicyApprover", () => {
  it("denies red calls by default, telling how to allow them", async () => {
    const d = await new PolicyApprover({ allow: [] }).decide(card(), { timeoutMs: 1000 });
    expect(d).toEqual({
      approved: false,
      by: "policy",
      reason: "denied by policy: red calls need a person; add 'fs__write_file' to approval.policy.allow to allow it",
      hash: "a".repeat(64),
    });
  });

  it("allows when a glob matches", async () => {
    const d = await new PolicyApprover({ allow: ["github__*", "fs__write_*"] }).decide(card(), { timeoutMs: 1000 });
    expect(d).toMatchObject({ approved: true, by: "policy", hash: "a".repeat(64) });
    expect(d.reason).toContain("fs__write_*");
    expect((await new PolicyApprover({ allow: ["fs__write"] }).decide(card(), { timeoutMs: 1000 })).approved).toBe(false);
  });

  it("denies an already-aborted call even when allowed", async () => {
    const d = await new PolicyApprover({ allow: ["*"] }).decide(card(), { timeoutMs: 1000, signal: AbortSignal.abort() });
    expect(d.approved).toBe(false);
  });
});

describe("TerminalApprover", () => {
  const setup = () => {
    const input = new PassThrough();
    const output = new PassThrough();
    let printed = "";
    output.on("data", (c: Buffer) => (printed += c.toString()));
    const approver = new TerminalApprover({ input, output, color: false, user: "alice" });
    return { input, output, approver, printed: () => printed };
  };

  it("prints the card, approves on y, and leaves no listener on the input", async () => {
    const { input, approver, printed } = setup();
    const pending = approver.decide(card(), { timeoutMs: 5000 });
    input.write("y\n");
    const d = await pending;
    expect(d).toEqual({ approved: true, by: "terminal:alice", reason: "approved by user at the terminal", hash: "a".repeat(64) });
    expect(printed()).toContain("fs__write_file would overwrite /workspace/a.txt");
    expect(printed()).toContain("Approve? [y]es / [n]o / [v]iew full diff");
    expect(listeners(input)).toBe(0);
  });

  it("denies on n", async () => {
    const { input, approver } = setup();
    const pending = approver.decide(card(), { timeoutMs: 5000 });
    input.write("no\n");
    expect(await pending).toMatchObject({ approved: false, by: "terminal:alice", reason: "denied by user" });
    expect(listeners(input)).toBe(0);
  });

  it("v prints the full card and asks again; nonsense asks again", async () => {
    const { input, approver, printed } = setup();
    const pending = approver.decide(card(), { timeoutMs: 5000 });
    input.write("v\n");
    input.write("maybe\n");
    input.write("y\n");
    expect((await pending).approved).toBe(true);
    expect(printed().match(/Approve\?/g)?.length).toBe(3);
    expect(printed()).toContain("Please answer y, n or v.");
  });

  it("times out as a denial by 'timeout' and cleans up", async () => {
    const { input, approver, printed } = setup();
    const d = await approver.decide(card(), { timeoutMs: 50 });
    expect(d).toMatchObject({ approved: false, by: "timeout", hash: "a".repeat(64) });
    expect(d.reason).toContain("0.1 s");
    expect(printed()).toContain("No answer after");
    expect(listeners(input)).toBe(0);
  });

  it("an abort denies and cleans up", async () => {
    const { input, approver, printed } = setup();
    const ac = new AbortController();
    const pending = approver.decide(card(), { timeoutMs: 5000, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 20));
    expect(printed()).toContain("Approve?");
    ac.abort(new Error("client went away"));
    const d = await pending;
    expect(d).toMatchObject({ approved: false, by: "aborted" });
    expect(d.reason).toContain("client went away");
    expect(listeners(input)).toBe(0);
  });

  it("closed input denies at once", async () => {
    const { input, approver } = setup();
    const pending = approver.decide(card(), { timeoutMs: 5000 });
    input.end();
    expect(await pending).toMatchObject({ approved: false, reason: "denied: the terminal input closed before an answer" });
  });

  it("asks one question at a time", async () => {
    const { input, approver, printed } = setup();
    const first = approver.decide(card("1".repeat(64)), { timeoutMs: 5000 });
    const second = approver.decide(card("2".repeat(64), "delete_file"), { timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 20));
    expect(printed()).not.toContain("fs__delete_file");
    input.write("n\n");
    expect(await first).toMatchObject({ approved: false, hash: "1".repeat(64) });
    await new Promise((r) => setTimeout(r, 20));
    expect(printed()).toContain("fs__delete_file");
    input.write("y\n");
    expect(await second).toMatchObject({ approved: true, hash: "2".repeat(64) });
    expect(listeners(input)).toBe(0);
  });
});

describe("ElicitationApprover", () => {
  const decide = (elicit: ElicitFn, opts: { timeoutMs?: number; signal?: AbortSignal } = {}) =>
    new ElicitationApprover({ elicit }).decide(card(), { timeoutMs: opts.timeoutMs ?? 5000, signal: opts.signal });

  it("sends the uncoloured card and the approve/reason schema; accept+approve approves", async () => {
    const elicit = vi.fn<ElicitFn>(() => Promise.resolve({ action: "accept", content: { approve: true } }));
    const d = await decide(elicit);
    expect(d).toEqual({ approved: true, by: "elicitation", reason: "approved by user", hash: "a".repeat(64) });
    const [message, schema] = elicit.mock.calls[0]!;
    expect(message).toContain("fs__write_file would overwrite");
    expect(message).not.toContain(String.fromCharCode(27));
    expect(schema).toBe(ELICITATION_SCHEMA);
    expect(ELICITATION_SCHEMA.properties.approve).toMatchObject({ type: "boolean", title: "Approve this call?" });
  });

  it.each([
    [{ action: "accept", content: { approve: false, reason: "wrong file" } }, "denied by user: wrong file"],
    [{ action: "accept", content: {} }, "denied by user"],
    [{ action: "accept", content: { approve: "true" } }, "denied by user"],
    [{ action: "decline" }, "denied by user: the approval request was declined"],
    [{ action: "cancel" }, "denied: the user dismissed the approval request without answering"],
  ] as const)("%j is a denial", async (answer, reason) => {
    expect(await decide(() => Promise.resolve(answer))).toEqual({ approved: false, by: "elicitation", reason, hash: "a".repeat(64) });
  });

  it("a throwing elicit denies with the error message", async () => {
    const d = await decide(() => Promise.reject(new Error("client does not support elicitation")));
    expect(d).toMatchObject({ approved: false, reason: expect.stringContaining("client does not support elicitation") });
    const sync = await decide(() => {
      throw new Error("sync boom");
    });
    expect(sync.reason).toContain("sync boom");
  });

  it("timeout and abort deny, and the elicit call's signal is aborted", async () => {
    let seen: AbortSignal | undefined;
    const hang: ElicitFn = (_m, _s, o) => {
      seen = o?.signal;
      return new Promise(() => {});
    };
    expect(await decide(hang, { timeoutMs: 30 })).toMatchObject({ approved: false, by: "timeout" });
    expect(seen?.aborted).toBe(true);
    const ac = new AbortController();
    const pending = decide(hang, { signal: ac.signal });
    ac.abort();
    expect(await pending).toMatchObject({ approved: false, by: "aborted" });
  });
});

describe("ApprovalQueue and QueueApprover", () => {
  it("add, list, approve with the right hash; events for added and decided", () => {
    const q = new ApprovalQueue({ now: () => new Date("2025-01-01T00:00:00Z") });
    const events: QueueEvent[] = [];
    const stop = q.subscribe((e) => events.push(e));
    const entry = q.add(card(), { timeoutMs: 60_000 });
    expect(entry).toMatchObject({ createdAt: "2025-01-01T00:00:00.000Z", expiresAt: "2025-01-01T00:01:00.000Z" });
    expect(q.list()).toEqual([entry]);
    const d = q.approve(entry.id, { hash: "a".repeat(64), by: "api:web", reason: "looks fine" });
    expect(d).toEqual({ approved: true, by: "api:web", reason: "looks fine", hash: "a".repeat(64) });
    expect(q.list()).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(["added", "decided"]);
    stop();
    q.add(card());
    expect(events).toHaveLength(2);
  });

  it("rejects a wrong hash (entry stays pending) and unknown or decided ids", () => {
    const q = new ApprovalQueue();
    const entry = q.add(card());
    expect(() => q.approve(entry.id, { hash: "b".repeat(64), by: "api:x" })).toThrow(expect.objectContaining({ code: "E_APPROVAL_HASH_MISMATCH" }));
    expect(q.list()).toHaveLength(1);
    q.deny(entry.id, { by: "api:x", reason: "no" });
    expect(() => q.approve(entry.id, { hash: "a".repeat(64), by: "api:x" })).toThrow(expect.objectContaining({ code: "E_APPROVAL_NOT_FOUND" }));
    expect(() => q.deny("nope", { by: "api:x" })).toThrow(expect.objectContaining({ code: "E_APPROVAL_NOT_FOUND" }));
  });

  it("QueueApprover waits for a decision made on the queue", async () => {
    const q = new ApprovalQueue();
    q.subscribe((e) => {
      if (e.type === "added") queueMicrotask(() => q.approve(e.entry.id, { hash: e.entry.card.hash, by: "api:cli" }));
    });
    const d = await new QueueApprover({ queue: q }).decide(card(), { timeoutMs: 5000 });
    expect(d).toEqual({ approved: true, by: "api:cli", reason: "approved by api:cli", hash: "a".repeat(64) });
  });

  it("QueueApprover times out: denied by 'timeout', removed from the queue, late approval is NOT_FOUND", async () => {
    const q = new ApprovalQueue();
    const decided: QueueEvent[] = [];
    q.subscribe((e) => e.type === "decided" && decided.push(e));
    const d = await new QueueApprover({ queue: q }).decide(card(), { timeoutMs: 30 });
    expect(d).toMatchObject({ approved: false, by: "timeout", hash: "a".repeat(64) });
    expect(q.list()).toEqual([]);
    expect(decided).toHaveLength(1);
    const id = decided[0]!.entry.id;
    expect(() => q.approve(id, { hash: "a".repeat(64), by: "api:late" })).toThrow(expect.objectContaining({ code: "E_APPROVAL_NOT_FOUND" }));
  });

  it("QueueApprover abort denies and removes the entry; an already-aborted signal never queues", async () => {
    const q = new ApprovalQueue();
    const ac = new AbortController();
    const pending = new QueueApprover({ queue: q }).decide(card(), { timeoutMs: 5000, signal: ac.signal });
    expect(q.list()).toHaveLength(1);
    ac.abort();
    expect(await pending).toMatchObject({ approved: false, by: "aborted" });
    expect(q.list()).toEqual([]);
    expect(await new QueueApprover({ queue: q }).decide(card(), { timeoutMs: 5000, signal: AbortSignal.abort() })).toMatchObject({ approved: false });
    expect(q.list()).toEqual([]);
  });
});
