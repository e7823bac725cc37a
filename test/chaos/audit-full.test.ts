/**
 * Chaos: the disk under the audit log fills up. The real AuditStore lives on a
 * 512 KiB tmpfs; once it is full, appends fail loudly (E_AUDIT_WRITE in the
 * result), red calls are refused before anyone is asked, and when the space
 * comes back the next append succeeds, red calls are asked again and the chain
 * still verifies. The tmpfs is unmounted and removed even when a test fails.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { McpHub } from "../../src/mcp/hub.js";
import { AuditStore } from "../../src/approval/audit/index.js";
import { parseConfig } from "../../src/config/load.js";
import type { Sandbox } from "../../src/sandbox/types.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { namespaceLeftovers } from "../helpers/leftovers.js";
import { RecordingSandboxes, stageMcpServers, type StagedServers } from "../helpers/mcp-servers.js";
import { ScriptedApprover, outcome, text } from "../helpers/mcp-hub.js";

const skip = namespaceSkipReason() ?? (process.getuid?.() === 0 ? undefined : "mounting a tmpfs needs root");
announceSkip("chaos: audit disk full", skip);

/** Write zeros into `path` until the filesystem says ENOSPC; returns the bytes written. */
function fillDisk(path: string): number {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(16 * 1024);
  let written = 0;
  try {
    for (;;) written += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
  return written;
}

describe.skipIf(skip)("audit log on a full disk", () => {
  let mountDir = "";
  let mounted = false;
  let staged: StagedServers | undefined;
  let sandboxes: RecordingSandboxes | undefined;
  let store: AuditStore | undefined;
  let hub: McpHub | undefined;
  let sandbox: Sandbox;
  const approver = new ScriptedApprover();
  let filler = "";

  beforeAll(async () => {
    mountDir = mkdtempSync(join(tmpdir(), "lg-chaos-audit-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=512k,mode=0700", "lg-chaos-audit", mountDir]);
    mounted = true;
    filler = join(mountDir, "filler");
    store = AuditStore.open(join(mountDir, "audit.db"));
    staged = await stageMcpServers(["filesystem"]);
    sandboxes = new RecordingSandboxes();
    const config = parseConfig({
      mcp: { servers: { fs: { command: staged.node, args: ["/opt/mcp/filesystem.mjs", "/workspace"], sandbox: { mounts: [staged.mount], limits: { memory: "384M" } } } } },
    });
    hub = new McpHub({ config: config.mcp, gate: { rules: [], workspaceRoots: ["/workspace"], timeoutMs: 10_000, approver }, audit: store, sandboxes });
    await hub.start();
    expect(hub.status()[0]).toMatchObject({ name: "fs", state: "ready" });
    sandbox = sandboxes.made[0]!;
    await sandbox.files.write("/workspace/notes.txt", "alpha\n");
  }, 60_000);

  afterAll(async () => {
    await hub?.close();
    store?.close();
    if (mounted) {
      try {
        execFileSync("umount", [mountDir]);
      } catch {
        execFileSync("umount", ["-l", mountDir]); // something still holds a file: detach it anyway
      }
    }
    rmSync(mountDir, { recursive: true, force: true });
    await staged?.cleanup();
    expect(await namespaceLeftovers(sandboxes?.ids() ?? [])).toEqual([]);
  });

  it("records calls while there is space", async () => {
    const res = await hub!.call("fs__read_text_file", { path: "/workspace/notes.txt" });
    expect(res.isError).toBeFalsy();
    expect(text(res)).toBe("alpha\n");
    expect(store!.list().length).toBe(1);
    expect(hub!.auditFailure()).toBeUndefined();
  });

  it("a full disk makes the append fail loudly: the green result carries E_AUDIT_WRITE", async () => {
    expect(fillDisk(filler)).toBeGreaterThan(0);
    const rows = store!.list().length;
    const res = await hub!.call("fs__read_text_file", { path: "/workspace/notes.txt" });
    expect(res.isError).toBe(true);
    expect(outcome(res)).toMatchObject({ verdict: "green", decision: "auto", code: "E_AUDIT_WRITE" });
    // The tool's own output is kept, and the note says the record is missing and why.
    expect(text(res)).toContain("alpha\n");
    expect(text(res)).toMatch(/E_AUDIT_WRITE: this call was not recorded in the audit log: .*(full|space)/i);
    expect(hub!.auditFailure()).toMatch(/full|space/i);
    expect(store!.list().length).toBe(rows);
  });

  it("red calls are refused before anyone is asked, and nothing is written", async () => {
    const asked = approver.cards.length;
    approver.answers.push(true); // would approve if asked: the refusal must come first
    const res = await hub!.call("fs__write_file", { path: "/workspace/red.txt", content: "must not exist\n" });
    approver.answers.length = 0;
    expect(res.isError).toBe(true);
    expect(outcome(res)).toMatchObject({ verdict: "red", decision: "not-run", code: "E_AUDIT_WRITE" });
    expect(text(res)).toMatch(/^refused: the audit log cannot be written: .*; fix the disk, then retry\./);
    expect(approver.cards.length).toBe(asked);
    expect((await sandbox.files.list("/workspace")).map((e) => e.name)).not.toContain("red.txt");
  });

  it("when space comes back the next append succeeds and red calls are asked again; the chain verifies", async () => {
    unlinkSync(filler);
    const rows = store!.list().length;
    const green = await hub!.call("fs__read_text_file", { path: "/workspace/notes.txt" });
    expect(green.isError).toBeFalsy();
    expect(outcome(green).code).toBeNull();
    expect(hub!.auditFailure()).toBeUndefined();
    expect(store!.list().length).toBe(rows + 1);

    const asked = approver.cards.length;
    approver.answers.push(true);
    const red = await hub!.call("fs__write_file", { path: "/workspace/red.txt", content: "now recorded\n" });
    expect(red.isError).toBeFalsy();
    expect(outcome(red)).toMatchObject({ verdict: "red", decision: "approved", code: null });
    expect(approver.cards.length).toBe(asked + 1);
    expect(new TextDecoder().decode(await sandbox.files.read("/workspace/red.txt"))).toBe("now recorded\n");

    expect(store!.list({ limit: 100 }).map((r) => `${r.tool}:${r.decision}`).reverse()).toEqual(["read_text_file:auto", "read_text_file:auto", "write_file:approved"]);
    const verified = store!.verify();
    expect(verified.problems).toEqual([]);
    expect(verified.ok).toBe(true);
  });
});
