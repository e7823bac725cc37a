/**
 * An MCP server in a micro-VM through the same hub interface: the server's
 * bundle is copied into the guest (a VM cannot see host paths) and run with the
 * guest's own Node; green and red calls behave as on the other backends, and
 * closing the hub leaves no QEMU, VM folder or cgroup behind.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { McpHub } from "../../src/mcp/hub.js";
import { parseConfig } from "../../src/config/load.js";
import { announceSkip, microvmSkipReason } from "../helpers/capabilities.js";
import { microvmLeftovers } from "../helpers/leftovers.js";
import { RecordingSandboxes, stageMcpServers, type StagedServers } from "../helpers/mcp-servers.js";
import { MemoryAudit, ScriptedApprover, text } from "../helpers/mcp-hub.js";

const skip = microvmSkipReason();
announceSkip("MCP server in a micro-VM", skip);

describe.skipIf(skip)("MCP hub with server-memory in a micro-VM", () => {
  let staged: StagedServers;
  let hub: McpHub;
  let sandboxes: RecordingSandboxes;
  const approver = new ScriptedApprover();

  beforeAll(async () => {
    staged = await stageMcpServers(["memory"]);
    sandboxes = new RecordingSandboxes();
    const config = parseConfig({
      mcp: {
        servers: {
          mem: {
            command: "/usr/bin/node",
            args: ["/tmp/memory.mjs"],
            env: { MEMORY_FILE_PATH: "/workspace/memory.jsonl" },
            files: [{ source: staged.hostPath("memory"), target: "/tmp/memory.mjs" }],
            sandbox: { backend: "microvm", limits: { memory: "512M" } },
          },
        },
        connectTimeoutSeconds: 120,
      },
    });
    hub = new McpHub({ config: config.mcp, gate: { rules: [], workspaceRoots: ["/workspace"], timeoutMs: 5_000, approver }, audit: new MemoryAudit(), sandboxes });
    await hub.start();
    expect(hub.status()[0], hub.status()[0]?.lastError).toMatchObject({ state: "ready" });
  }, 240_000);

  afterAll(async () => {
    await hub?.close();
    expect(await microvmLeftovers(sandboxes?.ids() ?? [])).toEqual([]);
    await staged?.cleanup();
  }, 60_000);

  it("runs in a micro-VM and answers green and approved red calls", async () => {
    expect(sandboxes.made[0]?.backend).toBe("microvm");
    approver.answers.push(true);
    const created = await hub.call("mem__create_entities", { entities: [{ name: "vm", entityType: "place", observations: ["isolated"] }] });
    expect(created.isError, text(created)).toBeFalsy();
    expect(approver.cards.at(-1)?.summary).toBeTruthy();
    expect(text(await hub.call("mem__read_graph", {}))).toContain("isolated");
    // The server wrote its memory file inside the guest, where the hub can read it back.
    expect(new TextDecoder().decode(await sandboxes.made[0]!.files.read("/workspace/memory.jsonl"))).toContain("isolated");
  }, 120_000);
});
