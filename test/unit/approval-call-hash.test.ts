import * as z from "zod/mini";
import { describe, expect, it } from "vitest";
import { checkDecision } from "../../src/approval/binding.js";
import { callHash, canonicalJson } from "../../src/approval/call-hash.js";
import { approvalSchema } from "../../src/approval/config.js";
import type { Decision, DiffCard } from "../../src/approval/types.js";

describe("canonicalJson", () => {
  it("sorts keys recursively and has no whitespace", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: "x" } })).toBe('{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
  });

  it("leaves out undefined object values, as JSON on the wire does", () => {
    expect(canonicalJson({ a: undefined, b: null })).toBe('{"b":null}');
  });

  it.each([
    ["NaN", { a: NaN }],
    ["Infinity", { a: [Infinity] }],
    ["bigint", { a: 1n }],
    ["a function", { a: () => 1 }],
    ["undefined in an array", [undefined]],
    ["undefined alone", undefined],
    ["a Map", { m: new Map() }],
  ])("refuses %s with E_APPROVAL_UNHASHABLE", (_what, value) => {
    expect(() => canonicalJson(value)).toThrow(expect.objectContaining({ code: "E_APPROVAL_UNHASHABLE" }));
  });

  it("refuses cycles but accepts the same object twice", () => {
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(() => canonicalJson(loop)).toThrow(expect.objectContaining({ code: "E_APPROVAL_UNHASHABLE" }));
  });

  it("honours toJSON (dates)", () => {
    expect(canonicalJson({ d: new Date("2020-01-02T03:04:05Z") })).toBe('{"d":"2020-01-02T03:04:05.000Z"}');
  });
});

describe("callHash", () => {
  const args = { path: "/workspace/a.txt", content: "hello", opts: { mode: 1, flags: ["a", "b"] } };
  const base = callHash("fs", "write_file", args);

  it("is sha256 hex and ignores key order", () => {
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(callHash("fs", "write_file", { opts: { flags: ["a", "b"], mode: 1 }, content: "hello", path: "/workspace/a.txt" })).toBe(base);
  });

  it("changes when anything changes", () => {
    const variants = [
      callHash("fs2", "write_file", args),
      callHash("fs", "write_files", args),
      callHash("fs", "write_file", { ...args, content: "hello!" }),
      callHash("fs", "write_file", { ...args, path: "/workspace/b.txt" }),
      callHash("fs", "write_file", { ...args, opts: { mode: 2, flags: ["a", "b"] } }),
      callHash("fs", "write_file", { ...args, opts: { mode: 1, flags: ["b", "a"] } }),
      callHash("fs", "write_file", { ...args, opts: { mode: "1", flags: ["a", "b"] } }),
      callHash("fs", "write_file", { ...args, extra: null }),
    ];
    for (const v of variants) expect(v).not.toBe(base);
    expect(new Set(variants).size).toBe(variants.length);
  });

  it("does not confuse server/tool boundaries", () => {
    expect(callHash("a_", "b", {})).not.toBe(callHash("a", "_b", {}));
  });
});

describe("checkDecision", () => {
  const call = { server: "fs", tool: "write_file", args: { path: "/workspace/a", content: "x" } };
  const card = { hash: callHash(call.server, call.tool, call.args) } as DiffCard;
  const decision = (hash: string): Decision => ({ approved: true, by: "terminal:alice", reason: "ok", hash });

  it("passes a matching decision and call", () => {
    expect(() => checkDecision(card, decision(card.hash), call)).not.toThrow();
  });

  it("throws E_APPROVAL_HASH_MISMATCH for another card's decision", () => {
    expect(() => checkDecision(card, decision("0".repeat(64)))).toThrow(expect.objectContaining({ code: "E_APPROVAL_HASH_MISMATCH", name: "ApprovalError" }));
  });

  it("throws when the call changed after the card was built", () => {
    expect(() => checkDecision(card, decision(card.hash), { ...call, args: { ...call.args, content: "y" } })).toThrow(
      expect.objectContaining({ code: "E_APPROVAL_HASH_MISMATCH" }),
    );
  });
});

describe("approvalSchema", () => {
  it("fills in defaults", () => {
    expect(approvalSchema.parse({})).toEqual({ approver: "auto", timeoutSeconds: 120, policy: { allow: [] }, rules: [], workspaceRoots: ["/workspace"] });
  });

  it("accepts a full config", () => {
    const cfg = {
      approver: "policy",
      timeoutSeconds: 30,
      policy: { allow: ["fs__write_file"] },
      rules: [{ match: "fs__*", args: { path: "/workspace/*" }, verdict: "green", risk: "low", reason: "ok" }],
      workspaceRoots: ["/srv/a"],
    };
    expect(approvalSchema.parse(cfg)).toEqual(cfg);
  });

  it.each([
    [{ approver: "maybe" }],
    [{ timeoutSeconds: 0 }],
    [{ timeoutSeconds: 86_401 }],
    [{ timeoutSeconds: 1.5 }],
    [{ workspaceRoots: ["relative"] }],
    [{ workspaceRoots: [] }],
    [{ rules: [{ match: "x", verdict: "blue" }] }],
    [{ rules: [{ match: "x", verdict: "red", extra: 1 }] }],
    [{ policy: { deny: [] } }],
    [{ unknown: 1 }],
  ])("rejects %j", (raw) => {
    expect(approvalSchema.safeParse(raw).success).toBe(false);
  });

  it("is zod/mini, embeddable in the config", () => {
    const outer = z.strictObject({ approval: z.prefault(approvalSchema, {}) });
    expect(outer.parse({}).approval.timeoutSeconds).toBe(120);
  });
});
