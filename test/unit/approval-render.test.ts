import { describe, expect, it } from "vitest";
import { buildDiffCard } from "../../src/approval/diff-card.js";
import type { ContentReader } from "../../src/approval/reader.js";
import { cardJson, PREVIEW_LINES, renderCardText } from "../../src/approval/render.js";
import type { Classification, DiffCard } from "../../src/approval/types.js";

const ESC = String.fromCharCode(27);
const red: Classification = { verdict: "red", risk: "high", reason: "tool name verb 'write' writes data", rule: "verb:write" };
const reader: ContentReader = {
  readText: (p) => Promise.resolve(p === "/workspace/a.txt" ? "a\nb\nc\n" : null),
  stat: () => Promise.resolve(null),
};

const writeCard = () => buildDiffCard({ server: "fs", tool: "write_file", args: { path: "/workspace/a.txt", content: "a\nB\nc\n" } }, red, reader);

describe("renderCardText", () => {
  it("has a header with server__tool, verdict, risk, reason and rule, then the diff", async () => {
    const text = renderCardText(await writeCard(), { color: false });
    const lines = text.split("\n");
    expect(lines[0]).toBe("fs__write_file  RED  risk high");
    expect(lines[1]).toBe("why: tool name verb 'write' writes data (verb:write)");
    expect(lines[2]).toBe("fs__write_file would overwrite /workspace/a.txt (+1 −1 lines)");
    expect(text).toContain("-b\n+B");
    expect(text).toContain("@@ -1,3 +1,3 @@");
  });

  it("has no ANSI codes without colour, and colours diff lines with it", async () => {
    const card = await writeCard();
    expect(renderCardText(card, { color: false, full: true })).not.toContain(ESC);
    const colored = renderCardText(card, { color: true });
    expect(colored).toContain("\x1b[32m+B\x1b[0m");
    expect(colored).toContain("\x1b[31m-b\x1b[0m");
    expect(colored).toContain(`${ESC}[36m@@ -1,3 +1,3 @@${ESC}[0m`);
  });

  it("previews long bodies unless full, and cuts wide lines to width", async () => {
    const content = Array.from({ length: 200 }, (_, i) => `line ${i} ${"x".repeat(200)}`).join("\n");
    const card = await buildDiffCard({ server: "fs", tool: "write_file", args: { path: "/workspace/n.txt", content } }, red, reader);
    const preview = renderCardText(card, { color: false, width: 80 });
    expect(preview).toContain("more lines on this card");
    expect(preview).not.toContain("line 150");
    expect(Math.max(...preview.split("\n").map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(preview.split("\n").length).toBeLessThan(PREVIEW_LINES + 10);
    const full = renderCardText(card, { color: false, full: true });
    expect(full).toContain(`+line 199 ${"x".repeat(200)}`);
  });

  it("renders every body kind without colour codes", () => {
    const base = { hash: "h", server: "s", tool: "t", classification: red, summary: "s__t would do", createdAt: "2025-01-01T00:00:00.000Z" };
    const bodies: DiffCard["body"][] = [
      { kind: "file-delete", path: "/workspace/d", existed: true, bytes: null, entries: 3 },
      { kind: "file-move", from: "/a", to: "/b", overwrites: true },
      { kind: "command", argv: ["git", "commit", "-m", "a b"], cwd: "/workspace" },
      { kind: "message", recipient: "bob", endpoint: null, subject: "hi", body: "hello", truncated: false },
      { kind: "money", from: "A", to: "B", amount: "5", currency: "USD" },
      { kind: "generic", args: '{\n  "a": 1\n}', truncated: false },
    ];
    const texts = bodies.map((body) => renderCardText({ ...base, body }, { color: false }));
    for (const t of texts) expect(t).not.toContain(ESC);
    expect(texts[0]).toContain("directory, 3 entries");
    expect(texts[1]).toContain("REPLACES");
    expect(texts[2]).toContain("$ git commit -m 'a b'");
    expect(texts[3]).toContain("to: bob");
    expect(texts[4]).toContain("amount: 5 USD");
    expect(texts[5]).toContain('"a": 1');
  });
});

describe("cardJson", () => {
  it("is a plain JSON round-trip of the card, detached from it", async () => {
    const card = await writeCard();
    const json = cardJson(card);
    expect(json).toEqual(JSON.parse(JSON.stringify(card)));
    expect(json).toMatchObject({ hash: card.hash, server: "fs", body: { kind: "file-write" } });
    (json.body as { path: string }).path = "changed";
    expect((card.body as { path: string }).path).toBe("/workspace/a.txt");
  });
});
