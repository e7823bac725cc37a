/** Two writers on one file (the daemon and a CLI, say): the chain must stay one chain. */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditStore } from "../../src/approval/audit/store.js";
import { entry, tempLog } from "./audit-fixtures.js";

let t: ReturnType<typeof tempLog>;
beforeEach(() => {
  t = tempLog();
});
afterEach(() => t.cleanup());

describe("concurrent appends", () => {
  it("two stores in one process, interleaved 2×500: ids are dense and the chain verifies", () => {
    const a = AuditStore.open(t.db);
    const b = AuditStore.open(t.db);
    try {
      for (let i = 0; i < 500; i++) {
        a.append(entry(2 * i, { session: "a" }));
        b.append(entry(2 * i + 1, { session: "b" }));
      }
      const r = a.verify();
      expect(r).toEqual({ ok: true, rows: 1000, problems: [], moreProblems: 0 });
      expect([...b.exportAll()].map((row) => row.session).slice(0, 4)).toEqual(["a", "b", "a", "b"]);
    } finally {
      a.close();
      b.close();
    }
  });

  it("two processes appending 500 rows each at the same time: the chain verifies", async () => {
    // The store is TypeScript; bundle a tiny writer so plain node processes can run it.
    const script = join(t.dir, "writer.ts");
    writeFileSync(
      script,
      `import { AuditStore } from ${JSON.stringify(join(import.meta.dirname, "../../src/approval/audit/store.ts"))};
import { existsSync, writeFileSync } from "node:fs";
const [db, who, other] = process.argv.slice(2);
const s = AuditStore.open(db!);
// A start barrier, so the two writers really overlap however slowly each process starts.
writeFileSync(\`\${db}.ready-\${who}\`, "");
while (!existsSync(\`\${db}.ready-\${other}\`)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
for (let i = 0; i < 500; i++) s.append({ server: "fs", tool: "write_file", verdict: "red", risk: "high", reason: "r", rule: "verb:write", argsHash: "0".repeat(64), args: { who, i }, decision: "approved", decidedBy: who!, latencyMs: 1, resultBytes: 1, error: null });
s.close();
`,
    );
    const bundle = join(t.dir, "writer.mjs");
    await build({ entryPoints: [script], bundle: true, platform: "node", format: "esm", outfile: bundle, logLevel: "silent" });
    AuditStore.open(t.db).close();
    const run = (who: string, other: string): Promise<{ code: number | null; stderr: string }> =>
      new Promise((done) => {
        const p = spawn(process.execPath, [bundle, t.db, who, other], { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        p.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
        p.on("close", (code) => done({ code, stderr }));
      });
    const results = await Promise.all([run("p1", "p2"), run("p2", "p1")]);
    expect(results).toEqual([{ code: 0, stderr: "" }, { code: 0, stderr: "" }]);
    const store = AuditStore.open(t.db, { readOnly: true });
    try {
      expect(store.verify()).toEqual({ ok: true, rows: 1000, problems: [], moreProblems: 0 });
      const who = [...store.exportAll()].map((r) => r.decidedBy);
      expect(who.filter((w) => w === "p1")).toHaveLength(500);
      // No assertion on interleaving: SQLite's lock is not fair, and a writer appending in a
      // tight loop can keep it for its whole run while the other waits (up to busyTimeoutMs).
    } finally {
      store.close();
    }
  });
});
