/**
 * The daemon in-process on a temp Unix socket and a loopback TCP port: the
 * sandbox API over the real namespace backend, auth and rate limits, the
 * approval flow end to end (a red call from an MCP client over /mcp waits,
 * a wrong hash is refused, the right one releases it), the event stream,
 * metrics, audit, webhooks with dead letters and replay, and a shutdown
 * that leaves no sandbox and no socket behind.
 */
import { createServer, type Server } from "node:http";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { parseConfig } from "../../src/config/load.js";
import { Daemon } from "../../src/daemon/daemon.js";
import { DaemonClient } from "../../src/daemon/client.js";
import { DeadLetters } from "../../src/daemon/webhooks/dead-letters.js";
import { replayDeadLetter } from "../../src/daemon/webhooks/dispatcher.js";
import { verifySignature } from "../../src/daemon/webhooks/sign.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { namespaceLeftovers } from "../helpers/leftovers.js";
import { RecordingSandboxes, stageMcpServers, type StagedServers } from "../helpers/mcp-servers.js";
import { eventually } from "../helpers/procs.js";

const skip = namespaceSkipReason();
announceSkip("daemon HTTP API over the namespace backend", skip);

const TOKEN = "test-token-0123456789abcdef";
const SECRET = "webhook-secret-0123456789";

interface Received {
  event: string;
  body: string;
  signature: string | undefined;
}

/** A loopback webhook receiver; `failing` makes it answer 500. */
async function receiver(): Promise<{ server: Server; url: string; got: Received[]; failing: { on: boolean } }> {
  const got: Received[] = [];
  const failing = { on: false };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (failing.on) return void res.writeHead(500).end("nope");
      got.push({ event: String(req.headers["x-luminaguard-event"]), body: Buffer.concat(chunks).toString("utf8"), signature: req.headers["x-luminaguard-signature"] as string | undefined });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, got, failing };
}

function ndjson(body: Buffer): Record<string, unknown>[] {
  return body.toString("utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe.skipIf(skip)("luminaguard daemon", () => {
  let dir: string;
  let staged: StagedServers;
  let daemon: Daemon;
  let client: DaemonClient;
  let hubSandboxes: RecordingSandboxes;
  let good: Awaited<ReturnType<typeof receiver>>;
  let bad: Awaited<ReturnType<typeof receiver>>;
  let deadLetters: DeadLetters;
  const apiSandboxIds = new Set<string>();
  const sse: { type: string; data: Record<string, unknown> }[] = [];
  const sseAbort = new AbortController();
  let config: ReturnType<typeof parseConfig>;
  const tcp = (path: string, init: RequestInit = {}, token: string | null = TOKEN): Promise<Response> =>
    fetch(`${daemon.tcpUrl}${path}`, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers as Record<string, string> | undefined) } });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "lg-daemon-"));
    staged = await stageMcpServers(["filesystem"]);
    good = await receiver();
    bad = await receiver();
    bad.failing.on = true;
    deadLetters = new DeadLetters(join(dir, "dead-letters.jsonl"));
    hubSandboxes = new RecordingSandboxes();
    config = parseConfig({
      sandbox: { limits: { memory: "256M" } },
      pool: { min: 1, max: 4 },
      mcp: { servers: { fs: { command: staged.node, args: ["/opt/mcp/filesystem.mjs", "/workspace"], sandbox: { mounts: [staged.mount], limits: { memory: "384M" } } } } },
      approval: { approver: "api", timeoutSeconds: 60 },
      audit: { path: join(dir, "audit.db") },
      daemon: {
        rateLimits: { sandboxSpawn: { perSecond: 0.01, burst: 4 } },
        webhooks: [
          { url: good.url, events: ["approval.*"], secret: SECRET },
          { url: bad.url, events: ["sandbox.created"], secret: SECRET },
        ],
        webhookRetry: { attempts: 2, baseMs: 5, maxMs: 20, timeoutMs: 2000 },
        shutdownTimeoutSeconds: 5,
      },
    });
    daemon = await Daemon.start({ config, socketPath: join(dir, "daemon.sock"), tcp: { port: 0, token: TOKEN }, hubSandboxes, deadLetters, log: () => undefined });
    daemon.events.subscribe((e) => {
      if (e.type === "pool.spawned") apiSandboxIds.add(String(e.data.sandboxId));
    });
    for (const p of daemon.sandboxes.poolStats()) expect(p.stats.idle + p.stats.creating).toBeGreaterThan(0);
    client = new DaemonClient(daemon.socketPath);
    // The event stream over TCP, read in the background for the whole suite.
    void (async () => {
      const res = await tcp("/v1/events", { signal: sseAbort.signal });
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        let cut: number;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const type = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (type && data) sse.push({ type, data: JSON.parse(data) as Record<string, unknown> });
        }
      }
    })().catch(() => undefined);
  }, 120_000);

  afterAll(async () => {
    sseAbort.abort();
    await daemon?.stop();
    good?.server.close();
    bad?.server.close();
    await staged?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers /health on the socket (0600) and 503 E_DAEMON_NO_AGENT for tasks", async () => {
    const health = await client.health();
    expect(health).toMatchObject({ ok: true, version: "0.1.0", pid: process.pid, backends: { namespace: "ready" } });
    expect(health.servers).toEqual([{ name: "fs", state: "ready", where: expect.stringContaining("filesystem.mjs /workspace in a namespace sandbox"), tools: 14, lastError: null }]);
    const { statSync } = await import("node:fs");
    expect(statSync(daemon.socketPath).mode & 0o777).toBe(0o600);
    const tasks = await client.raw("GET", "/v1/tasks");
    expect(tasks.status).toBe(503);
    expect(JSON.parse(tasks.body.toString()).error.code).toBe("E_DAEMON_NO_AGENT");
  });

  it("requires the bearer token on TCP and compares it exactly", async () => {
    expect((await tcp("/health", {}, null)).status).toBe(401);
    const wrong = await tcp("/health", {}, `${TOKEN}x`);
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe("E_DAEMON_UNAUTHORIZED");
    expect((await tcp("/health")).status).toBe(200);
    // The dashboard's static page needs no token: it holds no data.
    const page = await tcp("/ui/", {}, null);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("LuminaGuard");
  });

  it("refuses TCP without a token, and a second daemon on a live socket", async () => {
    await expect(Daemon.start({ config, socketPath: join(dir, "other.sock"), tcp: { port: 0 }, log: () => undefined })).rejects.toMatchObject({ code: "E_DAEMON_TCP_TOKEN" });
    await expect(Daemon.start({ config, socketPath: daemon.socketPath, log: () => undefined })).rejects.toMatchObject({ code: "E_DAEMON_RUNNING" });
    expect(existsSync(daemon.socketPath)).toBe(true);
  });

  it("creates a sandbox from the warm pool, streams exec output, moves files, lists and destroys it", async () => {
    const refused = await client.raw("POST", "/v1/sandboxes", { spec: { workspace: "/root" } });
    expect(refused.status).toBe(400);
    expect(refused.body.toString()).toContain("cannot be set through the API");
    const created = await client.json<{ id: string; backend: string; warm: boolean }>("POST", "/v1/sandboxes", {});
    expect(created).toMatchObject({ backend: "namespace", warm: true });
    const id = created.id;

    const run = await client.raw("POST", `/v1/sandboxes/${id}/exec`, { argv: ["sh", "-c", "echo out; echo err >&2; cat; exit 3"], stdin: "from stdin\n" });
    expect(run.status).toBe(200);
    expect(run.headers["content-type"]).toContain("application/x-ndjson");
    const lines = ndjson(run.body);
    const text = (s: string): string => lines.filter((l) => l.stream === s).map((l) => String(l.data)).join("");
    expect(text("stdout")).toBe("out\nfrom stdin\n");
    expect(text("stderr")).toBe("err\n");
    expect(lines.at(-1)).toMatchObject({ exit: 3, signal: null });

    const timeout = ndjson((await client.raw("POST", `/v1/sandboxes/${id}/exec`, { argv: ["sleep", "30"], timeout: 0.3 })).body);
    expect(timeout.at(-1)).toMatchObject({ error: { code: "E_EXEC_TIMEOUT" } });

    const put = await client.raw("PUT", `/v1/sandboxes/${id}/files?path=/workspace/a.txt`, "hello file");
    expect(put.status).toBe(200);
    const got = await client.raw("GET", `/v1/sandboxes/${id}/files?path=/workspace/a.txt`);
    // raw() sends JSON, so the file holds the JSON string.
    expect(got.body.toString()).toBe('"hello file"');
    const listing = await client.json<{ entries: { name: string }[] }>("GET", `/v1/sandboxes/${id}/files?path=/workspace&list`);
    expect(listing.entries.map((e) => e.name)).toContain("a.txt");
    expect((await client.raw("DELETE", `/v1/sandboxes/${id}/files?path=/workspace/a.txt`)).status).toBe(200);
    expect((await client.raw("GET", `/v1/sandboxes/${id}/files?path=/workspace/a.txt`)).status).toBe(404);

    const list = await client.json<{ sandboxes: { id: string; backend: string; ageSeconds: number; limits: { memoryBytes: number } }[] }>("GET", "/v1/sandboxes");
    expect(list.sandboxes).toEqual([expect.objectContaining({ id, backend: "namespace", limits: expect.objectContaining({ memoryBytes: 256 * 1024 ** 2 }) })]);
    expect(list.sandboxes[0]!.ageSeconds).toBeGreaterThanOrEqual(0);

    expect((await client.raw("DELETE", `/v1/sandboxes/${id}`)).status).toBe(200);
    const gone = await client.raw("POST", `/v1/sandboxes/${id}/exec`, { argv: ["true"] });
    expect(gone.status).toBe(404);
    expect(await namespaceLeftovers([id])).toEqual([]);
  });

  it("rate limits sandbox spawns per client with 429 and Retry-After", async () => {
    // The unix client spent 2 of its 4 spawn tokens above; TCP is another client with its own 4.
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 5; i++) {
      last = await tcp("/v1/sandboxes", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ spec: 5 }) });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([400, 400, 400, 400, 429]);
    expect(Number(last!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await last!.json()) as { error: { code: string } }).error.code).toBe("E_DAEMON_RATE_LIMITED");
  });

  it("holds a red MCP call until approved with the card's exact hash; events, audit and metrics follow", async () => {
    const mcp = new Client({ name: "daemon-test", version: "1.0.0" });
    await mcp.connect(new StreamableHTTPClientTransport(new URL(`${daemon.tcpUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${TOKEN}` } } }));
    try {
      const tools = await mcp.listTools();
      expect(tools.tools.map((t) => t.name)).toContain("fs__write_file");
      const pendingCall = mcp.callTool({ name: "fs__write_file", arguments: { path: "/workspace/approved.txt", content: "approved\n" } }) as Promise<CallToolResult>;
      let pending: { id: string; hash: string; cardJson: { body: { kind: string } } }[] = [];
      expect(await eventually(async () => (pending = (await client.json<{ pending: typeof pending }>("GET", "/v1/approvals")).pending).length === 1, 30_000, 100)).toBe(true);
      const entry = pending[0]!;
      expect(entry.cardJson.body.kind).toBe("file-write");

      const wrong = await client.raw("POST", `/v1/approvals/${entry.id}/approve`, { hash: "0".repeat(64) });
      expect(wrong.status).toBe(409);
      expect(JSON.parse(wrong.body.toString()).error.code).toBe("E_APPROVAL_HASH_MISMATCH");
      expect((await client.json<{ pending: unknown[] }>("GET", "/v1/approvals")).pending).toHaveLength(1);

      const ok = await client.json<{ decision: { approved: boolean; by: string } }>("POST", `/v1/approvals/${entry.id}/approve`, { hash: entry.hash });
      expect(ok.decision).toMatchObject({ approved: true, by: "api:local" });
      const result = await pendingCall;
      expect(result.isError).toBeFalsy();
      const read = (await mcp.callTool({ name: "fs__read_text_file", arguments: { path: "/workspace/approved.txt" } })) as CallToolResult;
      expect(read.content[0]).toMatchObject({ type: "text", text: "approved\n" });
    } finally {
      await mcp.close();
    }

    expect(await eventually(() => sse.some((e) => e.type === "approval.decided"), 5_000)).toBe(true);
    expect(sse.find((e) => e.type === "approval.added")?.data).toMatchObject({ server: "fs", tool: "write_file" });
    expect(sse.some((e) => e.type === "mcp.call" && e.data.decision === "approved")).toBe(true);

    const audit = await client.json<{ rows: { id: number; tool: string; decision: string }[] }>("GET", "/v1/audit?server=fs&decision=approved");
    expect(audit.rows.map((r) => r.tool)).toEqual(["write_file"]);
    expect(await client.json("GET", `/v1/audit/${audit.rows[0]!.id}`)).toMatchObject({ tool: "write_file", decidedBy: "api:local" });
    expect(await client.json("GET", "/v1/audit/verify")).toMatchObject({ ok: true });

    const metrics = (await client.raw("GET", "/metrics")).body.toString();
    expect(metrics).toMatch(/luminaguard_mcp_calls_total\{server="fs",tool="write_file",decision="approved",status="ok"\} 1/);
    expect(metrics).toMatch(/luminaguard_mcp_calls_total\{server="fs",tool="read_text_file",decision="auto",status="ok"\} 1/);
    expect(metrics).toMatch(/luminaguard_approvals_total\{decision="approved",decided_by="api"\} 1/);
    expect(metrics).toMatch(/luminaguard_approval_response_seconds_count\{decision="approved"\} 1/);
    expect(metrics).toMatch(/luminaguard_pool_events_total\{backend="namespace",kind="hit"\} [1-9]/);
    expect(metrics).toMatch(/luminaguard_pool_events_total\{backend="namespace",kind="spawned"\} [1-9]/);
    expect(metrics).toMatch(/luminaguard_sandbox_spawn_seconds_count\{backend="namespace"\} [1-9]/);
    expect(metrics).toMatch(/luminaguard_pool_idle\{backend="namespace",pool="default"\} \d/);
    expect(metrics).toMatch(/luminaguard_rate_limited_total\{kind="sandboxSpawn"\} 1/);
  });

  it("signs webhooks, dead-letters what keeps failing, and replays it", async () => {
    expect(await eventually(() => good.got.some((g) => g.event === "approval.decided"), 5_000)).toBe(true);
    for (const g of good.got) expect(verifySignature(SECRET, g.body, g.signature)).toBe(true);
    expect(JSON.parse(good.got[0]!.body)).toMatchObject({ event: "approval.added", data: { server: "fs" } });

    expect(await eventually(() => deadLetters.list().length >= 1, 5_000)).toBe(true);
    const letter = deadLetters.list()[0]!;
    expect(letter).toMatchObject({ url: bad.url, event: "sandbox.created", attempts: 2 });
    expect(letter.lastError).toContain("500");

    bad.failing.on = false;
    await replayDeadLetter(letter, config.daemon.webhooks, deadLetters);
    expect(bad.got).toHaveLength(1);
    expect(verifySignature(SECRET, bad.got[0]!.body, bad.got[0]!.signature)).toBe(true);
    expect(bad.got[0]!.body).toBe(letter.body);
    expect(deadLetters.list().map((l) => l.id)).not.toContain(letter.id);
  });

  it("runs an agent task on its hub: the red edit waits in the approval queue, approving it finishes the task", async () => {
    const { AgentTaskRunner } = await import("../../src/daemon/agent-tasks.js");
    daemon.setTaskRunner(new AgentTaskRunner(config, daemon.hub));
    const fsSandbox = hubSandboxes.made.find((s) => !s.destroyed)!;
    await fsSandbox.files.write("/workspace/README.md", "Read teh docs.\n");
    const started = await tcp("/v1/tasks", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ task: "Fix the typo in README.md", provider: "replay" }) });
    expect(started.status, await started.clone().text()).toBe(201);
    const { id } = (await started.json()) as { id: string };
    let pending: { id: string; hash: string; cardJson: { tool: string } }[] = [];
    expect(
      await eventually(async () => {
        pending = ((await (await tcp("/v1/approvals")).json()) as { pending: typeof pending }).pending;
        return pending.some((p) => p.cardJson.tool === "edit_file");
      }, 30_000, 100),
    ).toBe(true);
    const card = pending.find((p) => p.cardJson.tool === "edit_file")!;
    const ok = await tcp(`/v1/approvals/${card.id}/approve`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ hash: card.hash }) });
    expect(ok.status).toBe(200);
    let status: { state: string; provider: string } | undefined;
    expect(
      await eventually(async () => {
        status = (await (await tcp(`/v1/tasks/${id}`)).json()) as typeof status;
        return status?.state === "succeeded";
      }, 30_000, 100),
    ).toBe(true);
    expect(status?.provider).toBe("replay");
    expect(new TextDecoder().decode(await fsSandbox.files.read("/workspace/README.md"))).toBe("Read the docs.\n");
    const transcript = (await (await tcp(`/v1/tasks/${id}/transcript`)).json()) as { entries?: unknown[] } | unknown[];
    expect(JSON.stringify(transcript)).toContain("fs__edit_file");
    expect(sse.some((e) => e.type === "task.tool-call")).toBe(true);
  }, 90_000);

  it("shuts down gracefully: no sandbox, no server process, no socket", async () => {
    const keep = await client.json<{ id: string }>("POST", "/v1/sandboxes", {});
    await daemon.stop();
    expect(existsSync(daemon.socketPath)).toBe(false);
    const ids = [...apiSandboxIds, keep.id, ...hubSandboxes.ids()];
    expect(ids.length).toBeGreaterThan(2);
    expect(await namespaceLeftovers(ids)).toEqual([]);
    await expect(client.health()).rejects.toMatchObject({ code: "E_DAEMON_NOT_RUNNING" });
  });
});
