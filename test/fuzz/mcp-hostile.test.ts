// MCP messages from a hostile server, through the hub's real stdio path
// (McpHub → ServerConnection → SandboxStdioTransport) with a fake sandbox whose
// "process" is a scripted server: 10,000 tools, names with control characters,
// spaces and 200 characters, invalid input schemas, non-JSON lines, and a line
// over the size cap. The hub must keep serving its other servers, leave invalid
// names out of tools(), end the oversized server with a clear reason, and never
// throw out of its public methods.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { McpHub } from "../../src/mcp/hub.js";
import type { SandboxSource } from "../../src/mcp/sandboxes.js";
import { parseConfig } from "../../src/config/load.js";
import type { ExecHandle, ExecOptions, Sandbox, SandboxSpec } from "../../src/sandbox/types.js";
import { FakeBackend, FakeSandbox } from "../helpers/fake-backend.js";
import { MemoryAudit, ScriptedApprover, text } from "../helpers/mcp-hub.js";
import { fc } from "./settings.js";

type Rpc = { jsonrpc: "2.0"; id?: number | string; method?: string; params?: Record<string, unknown> };
/** What a scripted server writes for one request: raw stdout text (lines with their "\n"). */
type Script = (req: Rpc) => string;

const reply = (id: Rpc["id"], result: unknown): string => `${JSON.stringify({ jsonrpc: "2.0", id, result })}\n`;
const init = (req: Rpc): string => reply(req.id, { protocolVersion: req.params?.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "hostile", version: "1" } });

/** A process whose stdout is whatever the script answers to each line written to its stdin. */
class ScriptedProcess implements ExecHandle {
  private queue: Uint8Array[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private resolveWait!: (r: { exitCode: number | null; signal: NodeJS.Signals | null; durationMs: number }) => void;
  private readonly done = new Promise<{ exitCode: number | null; signal: NodeJS.Signals | null; durationMs: number }>((r) => (this.resolveWait = r));
  private pending = "";

  constructor(private readonly script: Script) {}

  readonly stdout: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      next: async (): Promise<IteratorResult<Uint8Array>> => {
        while (this.queue.length === 0 && !this.ended) await new Promise<void>((r) => (this.wake = r));
        const v = this.queue.shift();
        return v ? { done: false, value: v } : { done: true, value: undefined };
      },
    }),
  };
  readonly stderr: AsyncIterable<Uint8Array> = { async *[Symbol.asyncIterator]() {} };

  /** Emit raw bytes on stdout in 1 MiB pieces (a pipe gives 64 KiB; bigger keeps the test fast). */
  emit(s: string | Buffer): void {
    const buf = typeof s === "string" ? Buffer.from(s) : s;
    for (let at = 0; at < buf.length; at += 1 << 20) this.queue.push(buf.subarray(at, at + (1 << 20)));
    this.wake?.();
  }

  async write(data: string | Uint8Array): Promise<void> {
    this.pending += typeof data === "string" ? data : Buffer.from(data).toString();
    let nl: number;
    while ((nl = this.pending.indexOf("\n")) >= 0) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      const req = JSON.parse(line) as Rpc;
      if (req.id === undefined) continue; // notifications
      this.emit(this.script(req));
    }
  }
  closeStdin(): void {}
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    if (this.ended) return;
    this.ended = true;
    this.wake?.();
    this.resolveWait({ exitCode: null, signal, durationMs: 0 });
  }
  wait(): Promise<{ exitCode: number | null; signal: NodeJS.Signals | null; durationMs: number }> {
    return this.done;
  }
}

/** A sandbox whose only command is the scripted server named by argv[0]. */
class ScriptedSandbox extends FakeSandbox {
  constructor(id: string, spec: SandboxSpec, owner: FakeBackend, private readonly scripts: Record<string, Script>, private readonly procs: ScriptedProcess[]) {
    super(id, spec, owner);
  }
  private readonly own: ScriptedProcess[] = [];

  override exec(argv: string[], _opts?: ExecOptions): ExecHandle {
    const p = new ScriptedProcess(this.scripts[argv[0]!]!);
    this.procs.push(p);
    this.own.push(p);
    return p;
  }
  /** Ends this sandbox's processes only: one server's failure must not touch its neighbours. */
  override destroy(): Promise<void> {
    for (const p of this.own) p.kill();
    return super.destroy();
  }
}

const tool = (name: string, inputSchema: unknown = { type: "object", properties: {} }): Record<string, unknown> => ({ name, inputSchema });
const BAD_NAMES = ["has space", "ctl\u0001char", "nl\nname", "x".repeat(200), "emoji😀", "ünïcode", "semi;colon", "a/b", "tab\tname", "__proto__\u0000"];

const SCRIPTS: Record<string, Script> = {
  // Well-behaved: one tool that echoes.
  good: (req) => {
    if (req.method === "initialize") return init(req);
    if (req.method === "tools/list") return reply(req.id, { tools: [{ name: "echo_text", inputSchema: { type: "object", properties: { text: { type: "string" } } }, annotations: { readOnlyHint: true } }] });
    if (req.method === "tools/call") return reply(req.id, { content: [{ type: "text", text: `echo:${JSON.stringify(req.params?.arguments)}` }] });
    return `${JSON.stringify({ jsonrpc: "2.0", id: req.id, error: { code: -32601, message: "no" } })}\n`;
  },
  // 10,000 tools, a tenth with bad names, non-JSON lines around every answer.
  huge: (req) => {
    const noise = "this is not json\n{\"half\": \n\u001b[31mred\u001b[0m\n";
    if (req.method === "initialize") return noise + init(req);
    if (req.method === "tools/list") {
      const tools = Array.from({ length: 10_000 }, (_, i) => tool(i % 10 === 0 ? `${BAD_NAMES[(i / 10) % BAD_NAMES.length]}${i}` : `t_${i}`));
      return noise + reply(req.id, { tools }) + noise;
    }
    return noise;
  },
  // Tools whose input schemas are not object schemas (or not schemas at all).
  schemas: (req) => {
    if (req.method === "initialize") return init(req);
    if (req.method === "tools/list") return reply(req.id, { tools: [tool("s_string", { type: "string" }), tool("s_null", null), tool("s_array", [1, 2]), tool("s_ref", { type: "object", $ref: "#/nowhere", properties: 5 }), tool("s_fine")] });
    return "";
  },
  // Answers initialize with one line over the 16 MiB cap (no newline inside).
  oversize: (req) => (req.method === "initialize" ? `{"jsonrpc":"2.0","id":${JSON.stringify(req.id)},"result":"${"A".repeat(17 * 1024 * 1024)}"}\n` : ""),
};

describe("the hub against hostile MCP servers", () => {
  const procs: ScriptedProcess[] = [];
  const owner = new FakeBackend();
  let n = 0;
  const sandboxes: SandboxSource = {
    create: async (spec: SandboxSpec): Promise<Sandbox> => new ScriptedSandbox(`hostile-${++n}`, spec, owner, SCRIPTS, procs),
    close: async () => {},
  };
  const servers = Object.fromEntries(Object.keys(SCRIPTS).map((k) => [k, { command: k }]));
  const config = parseConfig({ mcp: { servers, connectTimeoutSeconds: 20, reconnect: { attempts: 0 } } });
  let hub: McpHub;

  beforeAll(async () => {
    hub = new McpHub({ config: config.mcp, gate: { rules: [], workspaceRoots: ["/workspace"], timeoutMs: 5_000, approver: new ScriptedApprover() }, audit: new MemoryAudit(), sandboxes });
    await hub.start();
  }, 60_000);
  afterAll(async () => {
    await hub?.close();
    for (const p of procs) p.kill();
  });

  it("serves a huge tool list, leaving out names MCP clients would reject", () => {
    const st = hub.status().find((s) => s.name === "huge")!;
    expect(st.state).toBe("ready");
    const names = hub.tools().filter((t) => t.server === "huge").map((t) => t.name);
    expect(names).toHaveLength(9_000);
    for (const name of names) expect(name).toMatch(/^huge__t_\d+$/);
  });

  it("ends a server that writes a line over the size cap, with the reason", () => {
    const st = hub.status().find((s) => s.name === "oversize")!;
    expect(st.state).toBe("failed");
    expect(st.lastError).toMatch(/larger than \d+ bytes/);
    expect(hub.tools().some((t) => t.server === "oversize")).toBe(false);
  });

  it("leaves out tools with invalid definitions, names them, and still offers the valid ones", () => {
    // Each definition is checked on its own (the SDK's listTools would reject the whole list).
    const st = hub.status().find((s) => s.name === "schemas")!;
    expect(st.state).toBe("ready");
    expect(st.lastError).toMatch(/left out \d+ tool\(s\) with invalid definitions: .*s_string/);
    expect(hub.tools().filter((t) => t.server === "schemas").map((t) => t.name)).toEqual(["schemas__s_fine"]);
  });

  it("keeps serving the well-behaved server through all of it", async () => {
    expect(hub.status().find((s) => s.name === "good")!.state).toBe("ready");
    const r = await hub.call("good__echo_text", { text: "hi" });
    expect(text(r)).toBe('echo:{"text":"hi"}');
  });

  it("random tool names and arguments sent to the hub give a result or a typed McpError, never a crash", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("good__echo_text", "huge__t_1", "huge__has space0", "oversize__x", "__", "good__")), fc.anything({ maxDepth: 2 }), async (name, args) => {
        try {
          await hub.call(name, args);
        } catch (err) {
          expect((err as { code?: string }).code, String(err)).toMatch(/^E_MCP_/);
        }
      }),
      { numRuns: 100 },
    );
    expect(hub.status().find((s) => s.name === "good")!.state).toBe("ready");
  });
});
