/**
 * Network partitions between the hub and remote (HTTP) MCP servers: the real
 * server-everything (Streamable HTTP) and a counting server of our own, both
 * in a network namespace this file creates, reached over a veth. The link is
 * cut (every packet silently dropped) while idle, during a call, and on and
 * off every ~300 ms. What must hold: no call outlives its timeout (plus a
 * generous slack for the hub's own bookkeeping), calls succeed again once the
 * link heals, and a non-idempotent call cut mid-flight is reported as failed,
 * never re-sent by the hub.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { McpHub } from "../../src/mcp/hub.js";
import { parseConfig } from "../../src/config/load.js";
import type { Approver, Decision, DiffCard } from "../../src/approval/types.js";
import { stageMcpServers, type StagedServers } from "../helpers/mcp-servers.js";
import { MemoryAudit, outcome, text } from "../helpers/mcp-hub.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { eventually } from "../helpers/procs.js";
import { PartitionedHost } from "./partitioned-host.js";

const CALL_TIMEOUT_S = 2;
/** A call may end this long after its timeout: the SDK's timer, the hub's audit row, the event loop under load. */
const SLACK_MS = 4_000;
/** Codes a call cut off by the partition may end with; each says what happened. */
const PARTITION_CODES = ["E_MCP_TIMEOUT", "E_MCP_SERVER_CRASHED", "E_MCP_SERVER_UNAVAILABLE"];

const skip = partitionSkipReason();
announceSkip("MCP network partitions", skip);

function partitionSkipReason(): string | undefined {
  return namespaceSkipReason() ?? (process.getuid?.() === 0 ? undefined : "needs root to create network namespaces and nftables tables");
}

/** Approves everything: these tests are about the network, not the Approval Cliff. */
class YesApprover implements Approver {
  readonly name = "yes";
  async decide(card: DiffCard): Promise<Decision> {
    return { approved: true, by: "test", reason: "approved by test", hash: card.hash };
  }
}

interface Timed {
  result: CallToolResult;
  ms: number;
  code: string | null;
}

describe.skipIf(skip !== undefined)("hub to HTTP MCP servers across a network partition", () => {
  let staged: StagedServers;
  let host: PartitionedHost;
  let hub: McpHub;
  let counterProc: ChildProcess;
  const startCounter = async (): Promise<ChildProcess> =>
    (counterProc = await host.run([process.execPath, join(import.meta.dirname, "fixtures", "counter-server.mjs"), "0.0.0.0", String(counterPort)], {}, /^ready$/));
  const everythingPort = 3001;
  const counterPort = 3002;

  beforeAll(async () => {
    staged = await stageMcpServers(["everything"]);
    host = PartitionedHost.create();
    await host.run([process.execPath, staged.hostPath("everything"), "streamableHttp"], { PORT: String(everythingPort) }, /listening|running|port/i);
    await startCounter();
    const config = parseConfig({
      mcp: {
        servers: {
          ev: { url: `http://${host.address}:${everythingPort}/mcp`, allow: [`${host.address}:${everythingPort}`], transport: "streamable-http" },
          ctr: { url: `http://${host.address}:${counterPort}/mcp`, allow: [`${host.address}:${counterPort}`], transport: "streamable-http" },
        },
        callTimeoutSeconds: CALL_TIMEOUT_S,
        connectTimeoutSeconds: 3,
        reconnect: { attempts: 3, baseMs: 100, maxMs: 500 },
      },
    });
    hub = new McpHub({ config: config.mcp, gate: { rules: [], workspaceRoots: ["/workspace"], timeoutMs: 5_000, approver: new YesApprover() }, audit: new MemoryAudit() });
    await hub.start();
    expect(hub.status().map((s) => s.state)).toEqual(["ready", "ready"]);
  }, 60_000);

  afterAll(async () => {
    await hub?.close();
    host?.close();
    await staged?.cleanup();
  });

  /**
   * One call through the hub, timed. The hub turns failures into error results with a code,
   * except lookup errors it throws (E_MCP_SERVER_UNAVAILABLE while a reconnecting server has no tool list).
   */
  async function call(name: string, args: Record<string, unknown>): Promise<Timed> {
    const t0 = performance.now();
    try {
      const result = await hub.call(name, args);
      return { result, ms: performance.now() - t0, code: outcome(result)?.code ?? null };
    } catch (err) {
      const code = (err as { code?: string }).code ?? "thrown";
      return { result: { content: [{ type: "text", text: `${code}: ${(err as Error).message}` }], isError: true }, ms: performance.now() - t0, code };
    }
  }

  async function counter(): Promise<{ count: number; seen: string[] }> {
    host.heal();
    const r = await call("ctr__count", {});
    expect(r.code, text(r.result)).toBeNull();
    return JSON.parse(text(r.result)) as { count: number; seen: string[] };
  }

  /** After a heal, calls work again within a bounded time (the hub's reconnect or the same session). */
  async function recovers(): Promise<void> {
    host.heal();
    let last = "";
    const ok = await eventually(
      async () => {
        const [e, c] = await Promise.all([call("ev__echo", { message: "back" }), call("ctr__count", {})]);
        last = `${e.code}: ${text(e.result)} / ${c.code}: ${text(c.result)}`;
        return e.code === null && text(e.result).includes("back") && c.code === null;
      },
      20_000,
      200,
    );
    expect(ok, `calls still fail after the link healed: ${last}; status ${JSON.stringify(hub.status())}`).toBe(true);
  }

  it("works while the link is up", async () => {
    const before = (await counter()).count;
    const e = await call("ev__echo", { message: "hello" });
    expect(text(e.result)).toContain("hello");
    const b = await call("ctr__bump", { tag: "up-1" });
    expect(b.code).toBeNull();
    expect((await counter()).count).toBe(before + 1);
  });

  it("a call while the link is cut (idle cut) ends with a typed error within its timeout, and calls recover after the heal", async () => {
    host.cut();
    try {
      await new Promise((r) => setTimeout(r, 500));
      const [e, c] = await Promise.all([call("ev__echo", { message: "into the void" }), call("ctr__count", {})]);
      for (const r of [e, c]) {
        expect(PARTITION_CODES, text(r.result)).toContain(r.code);
        expect(r.result.isError).toBe(true);
        expect(text(r.result)).toMatch(/did not answer|stopped|down|starting/);
        expect(r.ms).toBeLessThan(CALL_TIMEOUT_S * 1000 + SLACK_MS);
      }
    } finally {
      host.heal();
    }
    await recovers();
  }, 40_000);

  it("a non-idempotent call cut mid-flight is reported failed and never re-sent", async () => {
    const before = await counter();
    const pending = call("ctr__bump", { tag: "mid-flight", delayMs: 1_000 });
    // The request reaches the server at once over the veth; cut while its answer is still owed.
    await new Promise((r) => setTimeout(r, 300));
    host.cut();
    const r = await pending;
    host.heal();
    expect(PARTITION_CODES, text(r.result)).toContain(r.code);
    expect(r.ms).toBeLessThan(CALL_TIMEOUT_S * 1000 + SLACK_MS);
    await recovers();
    // Give a would-be retry time to arrive: after reconnect backoff, it would have by now.
    await new Promise((res) => setTimeout(res, 1_500));
    const after = await counter();
    expect(after.seen.filter((t) => t === "mid-flight")).toEqual(["mid-flight"]); // executed once, not twice
    expect(after.count).toBe(before.count + 1);
    // And the next bump counts exactly once.
    const next = await call("ctr__bump", { tag: "after-heal" });
    expect(next.code).toBeNull();
    expect((await counter()).count).toBe(before.count + 2);
  }, 60_000);

  it("flapping (cut/heal every ~300 ms): every call ends within its bound, none runs twice, and calls succeed afterwards", async () => {
    // Cuts of ~300 ms alone are absorbed by TCP retransmission (calls are only delayed), so
    // one cut in the middle outlasts the call timeout: the run must see both outcomes.
    const flapUntil = Date.now() + 5_000;
    let flips = 0;
    let long = false;
    const flapper = (async () => {
      while (Date.now() < flapUntil) {
        if (host.isCut) host.heal();
        else host.cut();
        flips++;
        const longCut: boolean = host.isCut && !long && flips >= 6;
        long ||= longCut;
        await new Promise((r) => setTimeout(r, longCut ? CALL_TIMEOUT_S * 1000 + 600 : 300));
      }
      host.heal();
    })();
    const tags: string[] = [];
    const outcomes: Timed[] = [];
    const caller = async (lane: number): Promise<void> => {
      for (let i = 0; Date.now() < flapUntil; i++) {
        const tag = `flap-${lane}-${i}`;
        tags.push(tag);
        const r = lane === 0 ? await call("ev__echo", { message: tag }) : await call("ctr__bump", { tag });
        outcomes.push(r);
        if (r.code !== null) expect(PARTITION_CODES, text(r.result)).toContain(r.code);
        expect(r.ms).toBeLessThan(CALL_TIMEOUT_S * 1000 + SLACK_MS);
      }
    };
    try {
      await Promise.all([caller(0), caller(1), caller(2), flapper]);
    } finally {
      host.heal();
    }
    expect(flips).toBeGreaterThanOrEqual(8);
    expect(outcomes.some((o) => o.code === null)).toBe(true);
    expect(outcomes.some((o) => o.code !== null)).toBe(true);
    await recovers();
    await new Promise((res) => setTimeout(res, 1_500));
    const { seen } = await counter();
    const bumped = tags.filter((t) => !t.startsWith("flap-0-"));
    // No bump ran twice; every bump reported ok did run.
    for (const t of bumped) expect(seen.filter((s) => s === t).length, t).toBeLessThanOrEqual(1);
    const okBumps = outcomes.filter((o) => o.code === null && text(o.result).startsWith("count="));
    expect(seen.filter((s) => s.startsWith("flap-")).length).toBeGreaterThanOrEqual(okBumps.length);
    process.stdout.write(`[partition] flapping: ${flips} flips, ${outcomes.length} calls, ${outcomes.filter((o) => o.code === null).length} ok, codes ${JSON.stringify(countBy(outcomes.map((o) => o.code ?? "ok")))}\n`);
  }, 90_000);

  it("a server that lost our session during the partition (restarted) is re-initialized; the cut call is not re-sent", async () => {
    host.cut();
    const pending = call("ctr__bump", { tag: "lost-session" });
    await host.stop(counterProc);
    await startCounter(); // a fresh process: the hub's session id means nothing to it now
    const r = await pending;
    expect(PARTITION_CODES, text(r.result)).toContain(r.code);
    const restartsBefore = hub.status().find((s) => s.name === "ctr")!.restarts;
    host.heal();
    // The first call after the heal meets the new process: it refuses our old session (404), or, when
    // the kept-alive connection to the dead process is what the call used, that connection breaks.
    // Either way: a clear error, a reconnect, and no silent re-send.
    const refused = await call("ctr__bump", { tag: "refused-404" });
    expect(refused.code, text(refused.result)).toBe("E_MCP_SERVER_CRASHED");
    expect(text(refused.result)).toMatch(/no longer knows our session|connection to MCP server 'ctr' broke .* was not re-sent/);
    await recovers();
    expect(hub.status().find((s) => s.name === "ctr")!.restarts).toBe(restartsBefore + 1);
    const after = await counter();
    expect(after.seen).not.toContain("lost-session");
    expect(after.seen).not.toContain("refused-404");
    const next = await call("ctr__bump", { tag: "new-session" });
    expect(next.code, text(next.result)).toBeNull();
    expect((await counter()).seen).toEqual(["new-session"]);
    process.stdout.write(`[partition] after session loss: ${JSON.stringify(hub.status().map((s) => ({ name: s.name, state: s.state, restarts: s.restarts })))}\n`);
  }, 60_000);
});

function countBy(xs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}
