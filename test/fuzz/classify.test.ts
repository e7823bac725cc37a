// Bad input to the classifier: random tool names (unicode, controls, 200
// characters), random arguments and annotations. Always a Classification with a
// verdict, a risk and a reason; a red verb in the name is never overruled by
// readOnlyHint or anything else but a user rule; a matching user rule always wins.
import { describe, expect, it } from "vitest";
import { classify } from "../../src/approval/classify.js";
import { VERBS } from "../../src/approval/verbs.js";
import { splitWords } from "../../src/approval/words.js";
import type { Classification, ToolCall } from "../../src/approval/types.js";
import type { UserRule } from "../../src/approval/user-rules.js";
import { fc } from "./settings.js";

const RED_VERBS = [...VERBS].filter(([, v]) => v.verdict === "red").map(([w]) => w);
const GREEN_VERBS = [...VERBS].filter(([, v]) => v.verdict === "green").map(([w]) => w);

const word = fc.oneof(fc.constantFrom(...RED_VERBS), fc.constantFrom(...GREEN_VERBS), fc.stringMatching(/^[a-z]{1,8}$/), fc.string({ unit: "grapheme", maxLength: 8 }), fc.constantFrom("\u0000", "\n", "\u202e", " ", "__", "𝐝𝐞𝐥𝐞𝐭𝐞", "ＤＥＬＥＴＥ"));
const sep = fc.constantFrom("_", "-", ".", " ", "", "/", "\t", "__");
const toolName = fc.oneof(
  fc.array(fc.tuple(word, sep), { minLength: 1, maxLength: 6 }).map((parts) => parts.map(([w, s]) => w + s).join("")),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.string({ minLength: 190, maxLength: 220 }),
);
const annotations = fc.option(
  fc.record({ readOnlyHint: fc.oneof(fc.boolean(), fc.anything()), destructiveHint: fc.oneof(fc.boolean(), fc.anything()), idempotentHint: fc.anything(), title: fc.anything() }, { requiredKeys: [] }),
  { nil: undefined },
);
const args = fc.dictionary(fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom("path", "to", "amount", "method", "url", "__proto__", "recipient")), fc.oneof(fc.anything({ maxDepth: 2 }), fc.constantFrom("/etc/passwd", "/workspace/a", "../../x", "DELETE", 100, -1)), { maxKeys: 5 });
const call: fc.Arbitrary<ToolCall> = fc.record({ server: fc.oneof(fc.constantFrom("fs", "web"), fc.string({ maxLength: 10 })), tool: toolName, args, annotations: annotations as fc.Arbitrary<ToolCall["annotations"]> });

function wellFormed(c: Classification): void {
  expect(["green", "red"]).toContain(c.verdict);
  expect(["low", "medium", "high", "critical"]).toContain(c.risk);
  expect(typeof c.reason).toBe("string");
  expect(c.reason.trim().length).toBeGreaterThan(0);
  expect(c.rule.length).toBeGreaterThan(0);
}

describe("classifier under random input", () => {
  it("always gives a verdict, a risk and a reason, and never throws", () => {
    fc.assert(fc.property(call, (c) => wellFormed(classify(c, { rules: [] }))), { numRuns: 500 });
  });

  it("never turns a name with a red verb green without a user rule, whatever the annotations say", () => {
    const redName = fc.tuple(toolName, fc.constantFrom(...RED_VERBS), toolName, sep).map(([a, v, b, s]) => `${a}${s}${v}${s}${b}`);
    fc.assert(
      fc.property(call, redName, (c, tool) => {
        fc.pre(splitWords(tool).some((w) => RED_VERBS.includes(w)));
        expect(classify({ ...c, tool }, { rules: [] }).verdict).toBe("red");
        expect(classify({ ...c, tool, annotations: { ...c.annotations, readOnlyHint: true, destructiveHint: false } }, { rules: [] }).verdict).toBe("red");
      }),
      { numRuns: 500 },
    );
  });

  it("a matching user rule always wins, both ways", () => {
    fc.assert(
      fc.property(call, fc.constantFrom("green" as const, "red" as const), fc.boolean(), (c, verdict, exact) => {
        const name = `${c.server}__${c.tool}`;
        // Exact names only when they hold no glob characters; "*" matches every name.
        const match = exact && !/[*?]/.test(name) ? name : "*";
        const rule: UserRule = { match, verdict };
        const got = classify(c, { rules: [rule] });
        wellFormed(got);
        expect(got.verdict).toBe(verdict);
        expect(got.rule).toBe("user-rule:0");
      }),
      { numRuns: 500 },
    );
  });
});
