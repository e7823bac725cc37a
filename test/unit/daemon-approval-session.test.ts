/**
 * A pending approval says which task it belongs to: the hub's call session
 * (the agent's task id) goes through the gate to the approver, and the queue
 * approver keeps it on the pending entry (what `run` on a daemon picks its own
 * cards by).
 */
import { describe, expect, it } from "vitest";
import { Gate } from "../../src/mcp/gate.js";
import { QueueApprover } from "../../src/approval/approvers/queue.js";
import { ApprovalQueue, type PendingEntry } from "../../src/approval/queue.js";
import type { ContentReader } from "../../src/approval/reader.js";
import type { ToolCall } from "../../src/approval/types.js";

const reader: ContentReader = {
  readText: () => Promise.resolve("old\n"),
  stat: () => Promise.resolve({ type: "file", size: 4 }),
};
const call: ToolCall = { server: "fs", tool: "write_file", args: { path: "/workspace/a.txt", content: "new\n" } };

describe("approval session", () => {
  it("the gate hands the call's session to the queue, which keeps it on the pending entry", async () => {
    const queue = new ApprovalQueue();
    const gate = new Gate({ rules: [], workspaceRoots: ["/workspace"], timeoutMs: 5_000, approver: new QueueApprover({ queue }) });
    const added: PendingEntry[] = [];
    queue.subscribe((e) => {
      if (e.type === "added") {
        added.push(e.entry);
        queue.deny(e.entry.id, { by: "test" });
      }
    });
    const out = await gate.pass(call, { reader, session: "20250101-000000-abcdef" });
    expect(out.run).toBe(false);
    expect(added).toHaveLength(1);
    expect(added[0]!.session).toBe("20250101-000000-abcdef");
    // Without a session (a gateway call with none) the entry says so.
    await gate.pass(call, { reader });
    expect(added[1]!.session).toBeNull();
  });
});
