/** How a sandboxed MCP server's ending is put into words (shown in E_MCP_SERVER_CRASHED). */
import { describe, expect, it } from "vitest";
import { SandboxStdioTransport } from "../../src/mcp/sandbox-transport.js";
import type { ExecHandle, ExecResult, Sandbox } from "../../src/sandbox/types.js";

/** A sandbox whose one exec ends at once with `result`. */
function endingWith(result: ExecResult): Sandbox {
  const empty: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: async function* () {} };
  const handle: ExecHandle = { stdout: empty, stderr: empty, write: async () => {}, closeStdin: () => {}, kill: () => {}, wait: async () => result };
  return { exec: () => handle } as unknown as Sandbox;
}

async function endReason(result: ExecResult): Promise<string | undefined> {
  const t = new SandboxStdioTransport(endingWith(result), { argv: ["server"], maxMessageBytes: 1024 });
  const closed = new Promise<void>((r) => (t.onclose = r));
  await t.start();
  await closed;
  return t.endReason;
}

describe("sandboxed MCP server endings", () => {
  it("names the disk limit when the server died with its sandbox's disk full", async () => {
    expect(await endReason({ exitCode: 1, signal: null, durationMs: 5, diskFull: true })).toBe("its process exited with code 1 with the sandbox's disk full (raise sandbox.limits.disk for this server)");
  });

  it("says only how it ended otherwise", async () => {
    expect(await endReason({ exitCode: 1, signal: null, durationMs: 5 })).toBe("its process exited with code 1");
    expect(await endReason({ exitCode: null, signal: "SIGKILL", durationMs: 5 })).toBe("its process was killed by SIGKILL");
  });
});
