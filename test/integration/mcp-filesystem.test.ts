/**
 * The real @modelcontextprotocol/server-filesystem inside a namespace sandbox,
 * behind the hub: reads run at once, writes/edits/moves stop at the Approval
 * Cliff with a correct diff, and the file changes only after approval.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { McpHub } from "../../src/mcp/hub.js";
import { parseConfig } from "../../src/config/load.js";
import type { Sandbox } from "../../src/sandbox/types.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { namespaceLeftovers } from "../helpers/leftovers.js";
import { RecordingSandboxes, stageMcpServers, type StagedServers } from "../helpers/mcp-servers.js";
import { MemoryAudit, ScriptedApprover, outcome, text } from "../helpers/mcp-hub.js";

const skip = namespaceSkipReason();
announceSkip("MCP filesystem server in a sandbox", skip);

const decode = (b: Uint8Array): string => new TextDecoder().decode(b);

describe.skipIf(skip)("MCP hub with server-filesystem in a namespace sandbox", () => {
  let staged: StagedServers;
  let hub: McpHub;
  let sandboxes: RecordingSandboxes;
  const approver = new ScriptedApprover();
  const audit = new MemoryAudit();
  let sandbox: Sandbox;

  beforeAll(async () => {
    staged = await stageMcpServers(["filesystem"]);
    sandboxes = new RecordingSandboxes();
    const config = parseConfig({
      mcp: { servers: { fs: { command: staged.node, args: [`/opt/mcp/filesystem.mjs`, "/workspace"], sandbox: { mounts: [staged.mount], limits: { memory: "384M" } } } } },
    });
    hub = new McpHub({ config: config.mcp, gate: { rules: [], workspaceRoots: ["/workspace"], timeoutMs: 10_000, approver }, audit, sandboxes });
    await hub.start();
    expect(hub.status()[0]).toMatchObject({ name: "fs", state: "ready" });
    sandbox = sandboxes.made[0]!;
    await sandbox.files.write("/workspace/notes.txt", "alpha\nbeta\ngamma\n");
  }, 60_000);

  afterAll(async () => {
    await hub?.close();
    expect(await namespaceLeftovers(sandboxes?.ids() ?? [])).toEqual([]);
    await staged?.cleanup();
  });

  it("offers the server's tools as fs__<tool>, read tools green and write tools red", () => {
    const tools = new Map(hub.tools().map((t) => [t.name, t.classification.verdict]));
    expect(tools.get("fs__read_text_file")).toBe("green");
    expect(tools.get("fs__list_directory")).toBe("green");
    expect(tools.get("fs__write_file")).toBe("red");
    expect(tools.get("fs__edit_file")).toBe("red");
    expect(tools.get("fs__move_file")).toBe("red");
  });

  it("runs green calls without asking anyone", async () => {
    const asked = approver.cards.length;
    const listing = await hub.call("fs__list_directory", { path: "/workspace" });
    expect(listing.isError).toBeFalsy();
    expect(text(listing)).toContain("notes.txt");
    const read = await hub.call("fs__read_text_file", { path: "/workspace/notes.txt" });
    expect(text(read)).toBe("alpha\nbeta\ngamma\n");
    expect(outcome(read)).toMatchObject({ decision: "auto", verdict: "green" });
    expect(approver.cards.length).toBe(asked);
  });

  it("a denied write leaves the file untouched and tells the agent why", async () => {
    approver.answers.push(false);
    const res = await hub.call("fs__write_file", { path: "/workspace/notes.txt", content: "alpha\nBETA\ngamma\n" });
    expect(res.isError).toBe(true);
    expect(text(res)).toContain("denied");
    expect(outcome(res).decision).toBe("denied");
    const card = approver.cards.at(-1)!;
    expect(card.body.kind).toBe("file-write");
    if (card.body.kind === "file-write") {
      expect(card.body.existed).toBe(true);
      expect(card.body.diff).toContain("-beta");
      expect(card.body.diff).toContain("+BETA");
      expect(card.body).toMatchObject({ added: 1, removed: 1 });
    }
    expect(decode(await sandbox.files.read("/workspace/notes.txt"))).toBe("alpha\nbeta\ngamma\n");
  });

  it("an approved write changes the file, and only then", async () => {
    approver.answers.push(true);
    const res = await hub.call("fs__write_file", { path: "/workspace/new.txt", content: "hello\n" });
    expect(res.isError).toBeFalsy();
    expect(outcome(res)).toMatchObject({ decision: "approved", decidedBy: "test" });
    const card = approver.cards.at(-1)!;
    expect(card.body).toMatchObject({ kind: "file-write", existed: false, added: 1, removed: 0 });
    if (card.body.kind === "file-write") expect(card.body.diff).toContain("@@ -0,0 +1,1 @@\n+hello");
    expect(decode(await sandbox.files.read("/workspace/new.txt"))).toBe("hello\n");
  });

  it("edit_file shows the diff of the edit applied to the current content", async () => {
    approver.answers.push(false, true);
    const args = { path: "/workspace/notes.txt", edits: [{ oldText: "gamma", newText: "delta" }] };
    const denied = await hub.call("fs__edit_file", args);
    expect(outcome(denied).decision).toBe("denied");
    expect(decode(await sandbox.files.read("/workspace/notes.txt"))).toBe("alpha\nbeta\ngamma\n");
    const ok = await hub.call("fs__edit_file", args);
    expect(ok.isError).toBeFalsy();
    const card = approver.cards.at(-1)!;
    expect(card.body.kind).toBe("file-write");
    if (card.body.kind === "file-write") expect(card.body.diff).toMatch(/-gamma\n\+delta/);
    expect(decode(await sandbox.files.read("/workspace/notes.txt"))).toBe("alpha\nbeta\ndelta\n");
  });

  it("move_file waits for approval and then moves", async () => {
    approver.answers.push(false, true);
    const args = { source: "/workspace/new.txt", destination: "/workspace/moved.txt" };
    await hub.call("fs__move_file", args);
    expect((await sandbox.files.list("/workspace")).map((e) => e.name)).toContain("new.txt");
    const card = approver.cards.at(-1)!;
    expect(card.body).toMatchObject({ kind: "file-move", from: "/workspace/new.txt", to: "/workspace/moved.txt", overwrites: false });
    const ok = await hub.call("fs__move_file", args);
    expect(ok.isError).toBeFalsy();
    const names = (await sandbox.files.list("/workspace")).map((e) => e.name);
    expect(names).toContain("moved.txt");
    expect(names).not.toContain("new.txt");
  });

  it("an approval for a different call (hash) does not release this one", async () => {
    approver.answers.push((card) => ({ approved: true, by: "forger", reason: "", hash: card.hash.replace(/^./, (c) => (c === "0" ? "1" : "0")) }));
    const res = await hub.call("fs__write_file", { path: "/workspace/notes.txt", content: "owned\n" });
    expect(res.isError).toBe(true);
    expect(text(res)).toContain("E_APPROVAL_HASH_MISMATCH");
    expect(decode(await sandbox.files.read("/workspace/notes.txt"))).toBe("alpha\nbeta\ndelta\n");
  });

  it("a path outside the workspace is red even for a read tool", async () => {
    approver.answers.push(false);
    const res = await hub.call("fs__read_text_file", { path: "/etc/passwd" });
    expect(outcome(res)).toMatchObject({ verdict: "red", decision: "denied" });
  });

  it("audits every call with its decision", () => {
    const decisions = audit.rows.map((r) => `${r.tool}:${r.decision}`);
    expect(decisions).toContain("list_directory:auto");
    expect(decisions).toContain("write_file:denied");
    expect(decisions).toContain("write_file:approved");
    expect(decisions).toContain("edit_file:approved");
    for (const r of audit.rows) expect(r.argsHash).toMatch(/^[0-9a-f]{64}$/);
  });
});
