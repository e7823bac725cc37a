import { describe, expect, it } from "vitest";
import { callHash } from "../../src/approval/call-hash.js";
import { buildDiffCard } from "../../src/approval/diff-card.js";
import type { ContentReader, PathStat } from "../../src/approval/reader.js";
import type { Classification, DiffCardBody, ToolCall } from "../../src/approval/types.js";

const red: Classification = { verdict: "red", risk: "medium", reason: "tool name verb 'write' writes data", rule: "verb:write" };

/** An in-memory reader: files by path, dirs by path → entry count. */
function memReader(files: Record<string, string>, dirs: Record<string, number> = {}): ContentReader {
  return {
    readText: (p) => Promise.resolve(files[p] ?? null),
    stat: (p): Promise<PathStat | null> => {
      if (p in dirs) return Promise.resolve({ type: "dir", size: 4096, entries: dirs[p] });
      const f = files[p];
      return Promise.resolve(f === undefined ? null : { type: "file", size: Buffer.byteLength(f) });
    },
  };
}

const failing: ContentReader = {
  readText: () => Promise.reject(new Error("sandbox is gone")),
  stat: () => Promise.reject(new Error("sandbox is gone")),
};

const call = (tool: string, args: Record<string, unknown>, server = "fs"): ToolCall => ({ server, tool, args });
const body = <K extends DiffCardBody["kind"]>(b: DiffCardBody, kind: K) => {
  expect(b.kind).toBe(kind);
  return b as Extract<DiffCardBody, { kind: K }>;
};

describe("buildDiffCard: file writes", () => {
  it("a new file: everything added, diff from /dev/null", async () => {
    const c = call("write_file", { path: "/workspace/new.txt", content: "one\ntwo\n" });
    const card = await buildDiffCard(c, red, memReader({}), { now: () => new Date("2025-01-01T00:00:00Z") });
    const b = body(card.body, "file-write");
    expect(b).toMatchObject({ path: "/workspace/new.txt", existed: false, added: 2, removed: 0, truncated: false, newBytes: 8 });
    expect(b.diff).toContain("--- /dev/null");
    expect(b.diff).toContain("+one\n+two");
    expect(card.hash).toBe(callHash("fs", "write_file", c.args));
    expect(card.summary).toBe("fs__write_file would create /workspace/new.txt (+2 −0 lines)");
    expect(card.createdAt).toBe("2025-01-01T00:00:00.000Z");
    expect(card.classification).toEqual(red);
    expect(card).toMatchObject({ server: "fs", tool: "write_file" });
  });

  it("an overwrite: a real diff with counts", async () => {
    const reader = memReader({ "/workspace/a.txt": "a\nb\nc\n" });
    const card = await buildDiffCard(call("write_file", { path: "/workspace/a.txt", content: "a\nB\nc\nd\n" }), red, reader);
    const b = body(card.body, "file-write");
    expect(b).toMatchObject({ existed: true, added: 2, removed: 1 });
    expect(b.diff).toContain("--- a/workspace/a.txt");
    expect(b.diff).toContain("-b\n+B");
    expect(card.summary).toContain("would overwrite /workspace/a.txt (+2 −1 lines)");
  });

  it("a reader that throws: the card says the content is unavailable", async () => {
    const card = await buildDiffCard(call("write_file", { path: "/workspace/a.txt", content: "x\n" }), red, failing);
    const b = body(card.body, "file-write");
    expect(b.diff).toContain("current content unavailable: sandbox is gone");
    expect(b.diff).toContain("+x");
    expect(card.summary).toContain("current content unavailable: sandbox is gone");
  });

  it("truncates a 50,000-line diff with counts for the whole diff", async () => {
    const content = Array.from({ length: 50_000 }, (_, i) => `line ${i}`).join("\n") + "\n";
    const card = await buildDiffCard(call("write_file", { path: "/workspace/big.txt", content }), red, memReader({}));
    const b = body(card.body, "file-write");
    expect(b).toMatchObject({ added: 50_000, removed: 0, truncated: true });
    const lines = b.diff.split("\n");
    expect(lines).toHaveLength(401);
    // 3 header lines + 50,000 added = 50,003 lines; 400 kept.
    expect(lines[400]).toBe("… 49,603 more lines (+49,603 −0)");
  });

  it("an overwrite of a big file that changes everything stays correct (and quick)", async () => {
    const old = Array.from({ length: 30_000 }, (_, i) => `old ${i}`).join("\n") + "\n";
    const neu = Array.from({ length: 20_000 }, (_, i) => `new ${i}`).join("\n") + "\n";
    const started = Date.now();
    const card = await buildDiffCard(call("write_file", { path: "/workspace/f", content: neu }), red, memReader({ "/workspace/f": old }), { maxDiffLines: 50 });
    const b = body(card.body, "file-write");
    expect(b).toMatchObject({ added: 20_000, removed: 30_000, truncated: true });
    expect(b.diff.split("\n")).toHaveLength(51);
    expect(b.diff.split("\n")[50]).toMatch(/^… [\d,]+ more lines \(\+20,000 −29,953\)$/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe("buildDiffCard: edit_file", () => {
  const file = "function f() {\n  return 1;\n}\n\nconst x = 2;\n";

  it("applies the edits as the filesystem server does and diffs", async () => {
    const c = call("edit_file", {
      path: "/workspace/f.js",
      edits: [
        { oldText: "return 1;", newText: "return 42;" },
        { oldText: "const x = 2;", newText: "const x = 3;\nconst y = 4;" },
      ],
    });
    const card = await buildDiffCard(c, red, memReader({ "/workspace/f.js": file }));
    const b = body(card.body, "file-write");
    expect(b).toMatchObject({ existed: true, added: 3, removed: 2 });
    expect(b.diff).toContain("-  return 1;\n+  return 42;");
    expect(b.diff).toContain("+const y = 4;");
    expect(card.summary).toBe("fs__edit_file would edit /workspace/f.js (+3 −2 lines)");
  });

  it("replaces only the first occurrence, and matches ignoring indentation like the server", async () => {
    const c = call("edit_file", { path: "/workspace/a", edits: [{ oldText: "x", newText: "y" }, { oldText: "return 1;\n}", newText: "return 2;\n}" }] });
    const card = await buildDiffCard(c, red, memReader({ "/workspace/a": "x x\n  return 1;\n  }\n" }));
    const b = body(card.body, "file-write");
    expect(b.diff).toContain("+y x");
    expect(b.diff).toContain("+  return 2;");
    expect(b.diff).toContain("matched only when indentation is ignored");
  });

  it("a non-matching oldText: the card says the edit will fail and shows what was asked", async () => {
    const c = call("edit_file", { path: "/workspace/f.js", edits: [{ oldText: "return 1;", newText: "return 2;" }, { oldText: "not there", newText: "zzz" }] });
    const card = await buildDiffCard(c, red, memReader({ "/workspace/f.js": file }));
    const b = body(card.body, "file-write");
    expect(b.diff).toContain("EDIT WILL FAIL: edit 2 of 2 does not match");
    expect(b.diff).toContain("-not there\n+zzz");
    expect(card.summary).toBe("fs__edit_file would fail to edit /workspace/f.js: edit 2 of 2 does not match");
  });

  it("says so for a dry run and for a missing file", async () => {
    const dry = await buildDiffCard(call("edit_file", { path: "/workspace/f.js", edits: [{ oldText: "1", newText: "2" }], dryRun: true }), red, memReader({ "/workspace/f.js": file }));
    expect(dry.summary).toContain("dry run");
    const missing = await buildDiffCard(call("edit_file", { path: "/workspace/nope", edits: [{ oldText: "1", newText: "2" }] }), red, memReader({}));
    expect(missing.summary).toContain("does not exist");
  });
});

describe("buildDiffCard: delete, move, mkdir", () => {
  it("deleting a file: path and size", async () => {
    const card = await buildDiffCard(call("delete_file", { path: "/workspace/a.txt" }), red, memReader({ "/workspace/a.txt": "12345" }));
    expect(card.body).toEqual({ kind: "file-delete", path: "/workspace/a.txt", existed: true, bytes: 5, entries: null });
    expect(card.summary).toBe("fs__delete_file would delete file /workspace/a.txt (5 bytes)");
  });

  it("deleting a directory: entries", async () => {
    const card = await buildDiffCard(call("remove", { path: "/workspace/dir" }), red, memReader({}, { "/workspace/dir": 1234 }));
    expect(card.body).toMatchObject({ kind: "file-delete", existed: true, entries: 1234 });
    expect(card.summary).toContain("directory /workspace/dir with 1,234 entries");
  });

  it("deleting with a failing reader or a missing path", async () => {
    const broken = await buildDiffCard(call("delete_file", { path: "/workspace/a" }), red, failing);
    expect(broken.summary).toContain("current state unavailable: sandbox is gone");
    const gone = await buildDiffCard(call("delete_file", { path: "/workspace/a" }), red, memReader({}));
    expect(gone.body).toMatchObject({ existed: false });
  });

  it("moving onto an existing file says it overwrites", async () => {
    const reader = memReader({ "/workspace/a": "a", "/workspace/b": "b" });
    const card = await buildDiffCard(call("move_file", { source: "/workspace/a", destination: "/workspace/b" }), red, reader);
    expect(card.body).toEqual({ kind: "file-move", from: "/workspace/a", to: "/workspace/b", overwrites: true });
    expect(card.summary).toContain("replacing the existing file");
    const fresh = await buildDiffCard(call("move_file", { source: "/workspace/a", destination: "/workspace/c" }), red, reader);
    expect(fresh.body).toMatchObject({ overwrites: false });
  });

  it("create_directory: generic body with a clear headline", async () => {
    const card = await buildDiffCard(call("create_directory", { path: "/workspace/d" }), red, memReader({}));
    expect(card.body.kind).toBe("generic");
    expect(card.summary).toBe("fs__create_directory would create directory /workspace/d and any missing parents");
  });
});

describe("buildDiffCard: commands, messages, money, generic", () => {
  it("a command: exact argv and cwd", async () => {
    const card = await buildDiffCard(call("run_command", { command: "git", args: ["push", "--force", "origin main"], cwd: "/workspace/repo" }, "shell"), red, failing);
    expect(card.body).toEqual({ kind: "command", argv: ["git", "push", "--force", "origin main"], cwd: "/workspace/repo" });
    expect(card.summary).toBe("shell__run_command would run git push --force 'origin main' in /workspace/repo");
  });

  it("a shell string stays one string", async () => {
    const card = await buildDiffCard(call("execute", { cmd: "rm -rf / --no-preserve-root" }, "shell"), red, failing);
    expect(card.body).toEqual({ kind: "command", argv: ["rm -rf / --no-preserve-root"], cwd: null });
  });

  it("a message: recipient, subject and body", async () => {
    const card = await buildDiffCard(call("send_email", { to: ["a@x.com", "b@x.com"], subject: "Hi", body: "Hello there" }, "mail"), red, failing);
    expect(card.body).toEqual({ kind: "message", recipient: "a@x.com, b@x.com", endpoint: null, subject: "Hi", body: "Hello there", truncated: false });
    expect(card.summary).toBe('mail__send_email would send a message to a@x.com, b@x.com: "Hi" (11 bytes)');
  });

  it("a request: endpoint and body, cut to maxBodyBytes", async () => {
    const card = await buildDiffCard(call("fetch", { url: "https://api.x/hook", method: "POST", body: "y".repeat(5000) }, "web"), red, failing, { maxBodyBytes: 100 });
    const b = body(card.body, "message");
    expect(b).toMatchObject({ endpoint: "https://api.x/hook", recipient: null, truncated: true });
    expect(b.body).toContain("… 4,900 more bytes");
    expect(card.summary).toContain("would send a POST request to https://api.x/hook");
  });

  it("money: from, to, amount, currency", async () => {
    const card = await buildDiffCard(call("transfer", { from: "acct-1", to: "acct-2", amount: 250.5, currency: "EUR", memo: "rent" }, "bank"), red, failing);
    expect(card.body).toEqual({ kind: "money", from: "acct-1", to: "acct-2", amount: "250.5", currency: "EUR" });
    expect(card.summary).toBe("bank__transfer would transfer 250.5 EUR from acct-1 to acct-2");
  });

  it("anything else: canonical pretty JSON of the args, truncated", async () => {
    const card = await buildDiffCard(call("frobnicate", { b: 1, a: "x" }, "misc"), red, failing);
    expect(card.body).toEqual({ kind: "generic", args: '{\n  "a": "x",\n  "b": 1\n}', truncated: false });
    const big = await buildDiffCard(call("frobnicate", { blob: "z".repeat(10_000) }, "misc"), red, failing, { maxBodyBytes: 200 });
    expect(big.body).toMatchObject({ kind: "generic", truncated: true });
    expect(JSON.stringify(big.body).length).toBeLessThan(400);
  });

  it("a reader that throws synchronously is survived too", async () => {
    const weird: ContentReader = {
      readText: () => {
        throw new Error("boom");
      },
      stat: () => {
        throw new Error("boom");
      },
    };
    const card = await buildDiffCard(call("write_file", { path: "/workspace/a", content: "x" }), red, weird);
    expect(card.summary).toContain("current content unavailable: boom");
  });
});
