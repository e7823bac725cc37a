/**
 * The real @modelcontextprotocol/server-everything (and server-memory) over
 * stdio inside namespace sandboxes: list-changed notifications, annotations,
 * long-running calls, refused sampling, and the failure cases (a server that
 * never answers, one that dies mid-call, oversized output, bad names and
 * arguments), each with a clear error while the hub keeps serving.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { McpHub } from "../../src/mcp/hub.js";
import { parseConfig } from "../../src/config/load.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { namespaceLeftovers } from "../helpers/leftovers.js";
import { eventually, pidsWithMarker } from "../helpers/procs.js";
import { RecordingSandboxes, stageMcpServers, type StagedServers } from "../helpers/mcp-servers.js";
import { MemoryAudit, ScriptedApprover, outcome, text } from "../helpers/mcp-hub.js";

const skip = namespaceSkipReason();
announceSkip("MCP everything/memory servers in sandboxes", skip);


describe.skipIf(skip)("MCP hub with server-everything and server-memory over stdio", () => {
  let staged: StagedServers;
  let hub: McpHub;
  let sandboxes: RecordingSandboxes;
  const approver = new ScriptedApprover();
  const audit = new MemoryAudit();
  // A unique argument in the server's command line, so the test can find (and kill) exactly its own process.
  const marker = `lg-test-${randomUUID()}`;

  beforeAll(async () => {
    staged = await stageMcpServers(["everything", "memory"]);
    sandboxes = new RecordingSandboxes();
    const sandbox = { mounts: [staged.mount], limits: { memory: "384M" } };
    const config = parseConfig({
      mcp: {
        servers: {
          ev: { command: staged.node, args: ["/opt/mcp/everything.mjs", "stdio", marker], sandbox },
          mem: { command: staged.node, args: ["/opt/mcp/memory.mjs"], env: { MEMORY_FILE_PATH: "/workspace/memory.jsonl" }, sandbox },
        },
        callTimeoutSeconds: 20,
        maxOutputBytes: 8192,
        reconnect: { attempts: 3, baseMs: 50, maxMs: 200 },
      },
    });
    hub = new McpHub({ config: config.mcp, gate: { rules: [], workspaceRoots: ["/workspace"], timeoutMs: 5_000, approver }, audit, sandboxes });
    await hub.start();
    expect(hub.status().map((s) => s.state)).toEqual(["ready", "ready"]);
  }, 90_000);

  afterAll(async () => {
    await hub?.close();
    expect(pidsWithMarker(marker)).toEqual([]);
    expect(await namespaceLeftovers(sandboxes?.ids() ?? [])).toEqual([]);
    await staged?.cleanup();
  });

  it("aggregates both servers' tools with their annotations", () => {
    const tools = new Map(hub.tools().map((t) => [t.name, t]));
    expect(tools.get("ev__echo")?.definition.annotations?.readOnlyHint).toBe(true);
    expect(tools.get("ev__echo")?.classification.verdict).toBe("green");
    expect(tools.get("mem__read_graph")?.classification.verdict).toBe("green");
    expect(tools.get("mem__delete_entities")?.classification.verdict).toBe("red");
    expect(tools.get("mem__create_entities")?.classification.verdict).toBe("red");
  });

  it("follows tools/list_changed: tools the server adds after initialize appear", async () => {
    // server-everything registers its capability-dependent tools (sampling here) after initialization and notifies.
    expect(await eventually(() => hub.tools().some((t) => t.name === "ev__trigger-sampling-request"), 10_000)).toBe(true);
  });

  it("refuses a server's sampling request cleanly, as a readable tool error", async () => {
    approver.answers.push(true); // trigger-sampling-request is openWorld and not read-only: red.
    const res = await hub.call("ev__trigger-sampling-request", { prompt: "hi", maxTokens: 5 });
    expect(res.isError).toBe(true);
    expect(text(res)).toMatch(/does not let MCP servers ask the model/);
    expect((await hub.call("ev__echo", { message: "still here" })).isError).toBeFalsy();
  });

  it("declines a server's elicitation request: servers cannot ask the user around the Approval Cliff", async () => {
    expect(await eventually(() => hub.tools().some((t) => t.name === "ev__trigger-elicitation-request"), 10_000)).toBe(true);
    approver.answers.push(true);
    const res = await hub.call("ev__trigger-elicitation-request", {});
    expect(text(res)).toMatch(/declined/);
  });

  it("forwards resources and prompts read-only (prompts under server__prompt names)", async () => {
    const resources = await hub.listResources();
    expect(resources.length).toBeGreaterThan(0);
    const first = resources[0]!;
    const read = await hub.readResource(first.uri);
    expect(read.contents[0]?.uri).toBe(first.uri);
    await expect(hub.readResource("nope://nothing")).rejects.toMatchObject({ code: "E_MCP_UNKNOWN_TOOL" });
    const prompts = await hub.listPrompts();
    const simple = prompts.find((p) => p.name.startsWith("ev__") && !(p.arguments ?? []).some((a) => a.required));
    expect(simple).toBeDefined();
    const got = await hub.getPrompt(simple!.name, undefined);
    expect(got.messages.length).toBeGreaterThan(0);
  });

  it("runs a green call and a red call on the memory server", async () => {
    approver.answers.push(true);
    const created = await hub.call("mem__create_entities", { entities: [{ name: "lumina", entityType: "project", observations: ["sandboxes"] }] });
    expect(created.isError).toBeFalsy();
    expect(approver.cards.at(-1)?.server).toBe("mem");
    const graph = await hub.call("mem__read_graph", {});
    expect(text(graph)).toContain("lumina");
    expect(outcome(graph).decision).toBe("auto");
  });

  it("finishes a long-running call", async () => {
    approver.answers.push(true); // 'running' in its name makes it red despite its readOnlyHint
    const res = await hub.call("ev__trigger-long-running-operation", { duration: 1, steps: 3 });
    expect(res.isError).toBeFalsy();
    expect(text(res)).toMatch(/completed/i);
  });

  it("a call that never answers times out with E_MCP_TIMEOUT and the server keeps serving", async () => {
    approver.answers.push(true, true);
    const started = Date.now();
    const res = await hub.call("ev__trigger-long-running-operation", { duration: 600, steps: 2 }, { timeoutMs: 1000 });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(res.isError).toBe(true);
    expect(outcome(res).code).toBe("E_MCP_TIMEOUT");
    expect(text(res)).toMatch(/did not answer within 1 s/);
    // A caller that gives up (Ctrl-C, a cancelled task) gets its own code.
    const cancelled = await hub.call("ev__trigger-long-running-operation", { duration: 600, steps: 2 }, { signal: AbortSignal.timeout(500) });
    expect(outcome(cancelled).code).toBe("E_MCP_CANCELLED");
    expect(text(await hub.call("ev__echo", { message: "after" }))).toContain("after");
  });

  it("an oversized result is refused with E_MCP_OUTPUT_LIMIT and the next call works", async () => {
    const res = await hub.call("ev__echo", { message: "x".repeat(20_000) });
    expect(res.isError).toBe(true);
    expect(outcome(res).code).toBe("E_MCP_OUTPUT_LIMIT");
    expect(text(res)).toMatch(/more than mcp.maxOutputBytes/);
    expect(text(await hub.call("ev__echo", { message: "small" }))).toContain("small");
  });

  it("unknown or malformed tool names and non-object arguments throw a clear McpError", async () => {
    await expect(hub.call("nosuchseparator", {})).rejects.toMatchObject({ code: "E_MCP_UNKNOWN_TOOL" });
    await expect(hub.call("nobody__echo", {})).rejects.toMatchObject({ code: "E_MCP_UNKNOWN_TOOL", message: expect.stringContaining("ev, mem") });
    await expect(hub.call("ev__no_such_tool", {})).rejects.toMatchObject({ code: "E_MCP_UNKNOWN_TOOL" });
    await expect(hub.call("ev__echo", [1, 2])).rejects.toMatchObject({ code: "E_MCP_BAD_ARGS" });
    await expect(hub.call("ev__echo", "text")).rejects.toMatchObject({ code: "E_MCP_BAD_ARGS" });
    // Arguments the server's own schema rejects come back as a tool error, not a crash.
    const bad = await hub.call("ev__get-sum", { a: "one", b: 2 });
    expect(bad.isError).toBe(true);
  });

  it("a server that dies mid-call fails the call with E_MCP_SERVER_CRASHED, restarts in a fresh sandbox, and the other server is unaffected", async () => {
    const before = sandboxes.made.length;
    const alive = sandboxes.made.filter((s) => !s.destroyed);
    expect(alive.length).toBe(2);
    approver.answers.push(true);
    const pending = hub.call("ev__trigger-long-running-operation", { duration: 30, steps: 3 });
    const pids = pidsWithMarker(marker);
    expect(pids.length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 300));
    for (const pid of pids) process.kill(pid, "SIGKILL");
    const res = await pending;
    expect(res.isError).toBe(true);
    expect(outcome(res).code).toBe("E_MCP_SERVER_CRASHED");
    // The failure is on record: the call's audit row carries the crash.
    expect(audit.rows.at(-1)).toMatchObject({ server: "ev", tool: "trigger-long-running-operation", decision: "approved", error: expect.stringContaining("stopped during") });
    expect(text(await hub.call("mem__read_graph", {}))).toContain("lumina");
    // A call made while the server restarts waits for the fresh one instead of failing.
    // (A fresh sandbox plus node's start take hundreds of ms, so the server is still restarting here.)
    expect(hub.status()[0]!.state).toBe("restarting");
    expect(text(await hub.call("ev__echo", { message: "during restart" }))).toContain("during restart");
    expect(await eventually(() => hub.status()[0]!.state === "ready", 30_000, 100)).toBe(true);
    expect(hub.status()[0]!.restarts).toBe(1);
    expect(sandboxes.made.length).toBe(before + 1);
    // The dead server's sandbox is gone (with anything left in it); the memory server's is untouched.
    expect(alive.filter((s) => s.destroyed).length).toBe(1);
    expect(text(await hub.call("ev__echo", { message: "back" }))).toContain("back");
  });
});
