/**
 * The dashboard end to end in Debian's headless Chromium (playwright-core):
 * the daemon in-process (temp socket, loopback TCP with a token, the real
 * filesystem MCP server in a namespace sandbox), the page opened with the token
 * in the fragment. A red call from an MCP client shows up as a Diff Card
 * without a reload; Approve in the page releases it, Deny refuses it; hostile
 * markup in a diff stays text; the audit panel searches and verifies the chain;
 * sandboxes made through the API and agent task steps appear live.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { parseConfig } from "../../src/config/load.js";
import { Daemon } from "../../src/daemon/daemon.js";
import type { TaskEvent, TaskRunner, TaskStatus } from "../../src/daemon/tasks.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { namespaceLeftovers } from "../helpers/leftovers.js";
import { RecordingSandboxes, stageMcpServers, type StagedServers } from "../helpers/mcp-servers.js";
import { pidsWithMarker } from "../helpers/procs.js";

const CHROMIUM = "/usr/bin/chromium";
const skip = !existsSync(CHROMIUM) ? `${CHROMIUM} is missing (apt-get install chromium)` : namespaceSkipReason();
announceSkip("dashboard in headless Chromium", skip);

const TOKEN = "dashboard-token-0123456789abcdef";
const WAIT = { timeout: 30_000 };
/** Longer than WAIT, so a failing wait reports itself rather than the test's timeout. */
const TEST_MS = 60_000;
const HOSTILE = `<img src=x onerror="document.title='pwned'"><script>window.__pwned=1</script>`;

/** A stand-in agent: one running task whose steps the test emits. */
class FakeRunner implements TaskRunner {
  readonly #listeners = new Set<(e: TaskEvent) => void>();
  readonly task: TaskStatus = { id: "task-1", task: "tidy the <b>workspace</b>", state: "running", provider: "replay", model: "demo", createdAt: new Date().toISOString(), finishedAt: null, result: null, error: null };
  emit(e: TaskEvent): void {
    for (const l of this.#listeners) l(e);
  }
  start(): Promise<{ id: string }> {
    return Promise.resolve({ id: this.task.id });
  }
  status(id: string): TaskStatus | undefined {
    return id === this.task.id ? this.task : undefined;
  }
  list(): TaskStatus[] {
    return [this.task];
  }
  cancel(): Promise<boolean> {
    return Promise.resolve(false);
  }
  cancelAll(): Promise<void> {
    return Promise.resolve();
  }
  transcript(): undefined {
    return undefined;
  }
  subscribe(listener: (e: TaskEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }
}

describe.skipIf(skip)("dashboard (headless Chromium)", () => {
  let dir: string;
  let profile: string;
  let staged: StagedServers;
  let daemon: Daemon;
  let hubSandboxes: RecordingSandboxes;
  let browser: BrowserContext;
  let page: Page;
  let mcp: Client;
  const apiSandboxIds = new Set<string>();
  const pageErrors: string[] = [];
  const tcp = (path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${daemon.tcpUrl}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...(init.headers as Record<string, string> | undefined) } });
  const card = (text: string) => page.locator("#approvals-list article.card", { hasText: text });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "lg-dashboard-"));
    profile = join(dir, "chromium-profile");
    staged = await stageMcpServers(["filesystem"]);
    hubSandboxes = new RecordingSandboxes();
    const config = parseConfig({
      sandbox: { limits: { memory: "256M" } },
      pool: { min: 1, max: 4 },
      mcp: { servers: { fs: { command: staged.node, args: ["/opt/mcp/filesystem.mjs", "/workspace"], sandbox: { mounts: [staged.mount], limits: { memory: "384M" } } } } },
      approval: { approver: "api", timeoutSeconds: 120 },
      audit: { path: join(dir, "audit.db") },
      daemon: { shutdownTimeoutSeconds: 5 },
    });
    daemon = await Daemon.start({ config, socketPath: join(dir, "daemon.sock"), tcp: { port: 0, token: TOKEN }, hubSandboxes, log: () => undefined });
    daemon.events.subscribe((e) => {
      if (e.type === "pool.spawned") apiSandboxIds.add(String(e.data.sandboxId));
    });
    mcp = new Client({ name: "dashboard-test", version: "1.0.0" });
    await mcp.connect(new StreamableHTTPClientTransport(new URL(`${daemon.tcpUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${TOKEN}` } } }));

    // Our own profile folder marks every Chromium process, so the cleanup can prove none is left.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: [...(process.getuid?.() === 0 ? ["--no-sandbox"] : []), "--disable-crash-reporter", "--disable-breakpad"],
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on("pageerror", (err) => pageErrors.push(`pageerror: ${err.message}`));
    page.on("console", (msg) => {
      // A refused fetch (503 for tasks) logs "Failed to load resource": expected; anything else is a page bug or a CSP violation.
      if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) pageErrors.push(`console: ${msg.text()}`);
    });
    await page.goto(`${daemon.tcpUrl}/ui/#token=${TOKEN}`);
    await page.locator("#conn", { hasText: "Live" }).waitFor(WAIT);
  }, 180_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await mcp?.close().catch(() => undefined);
    await daemon?.stop();
    await staged?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("takes the token from the fragment, drops it from the address bar, and says no agent is configured", async () => {
    expect(page.url()).toBe(`${daemon.tcpUrl}/ui/`);
    expect(await page.evaluate('sessionStorage.getItem("luminaguard.token")')).toBe(TOKEN);
    await page.locator("#tasks-note", { hasText: "No agent configured" }).waitFor(WAIT);
    await page.locator("#approvals-empty", { hasText: "Nothing is waiting" }).waitFor(WAIT);
    // The pool panel draws its chart from the default pool's stats.
    await page.locator('#pool-list [data-backend="namespace"] svg[role="img"][aria-label^="Spawn latency"]').waitFor(WAIT);
  }, TEST_MS);

  it("shows a red call's Diff Card live; Approve in the page releases the waiting call", async () => {
    const call = mcp.callTool({ name: "fs__write_file", arguments: { path: "/workspace/dash-approved.txt", content: "hello from the dashboard\nsecond line\n" } }) as Promise<CallToolResult>;
    // Awaited below; this only keeps a failed test from also reporting an unhandled rejection.
    call.catch(() => undefined);
    const c = card("dash-approved.txt");
    await c.waitFor(WAIT);
    expect(await c.locator("h3").textContent()).toBe("fs__write_file");
    expect(await c.locator(".badge").textContent()).toBe("RED");
    expect(await c.locator(".summary").textContent()).toContain("would create /workspace/dash-approved.txt");
    expect(await c.locator(".diff .add").allTextContents()).toEqual(expect.arrayContaining(["+hello from the dashboard", "+second line"]));
    expect(await c.locator(".diff .meta").count()).toBeGreaterThan(0);
    // LG_DASHBOARD_SCREENSHOT=<dir> keeps a picture of the page with a card on it, to look at.
    if (process.env.LG_DASHBOARD_SCREENSHOT) await page.screenshot({ path: join(process.env.LG_DASHBOARD_SCREENSHOT, "dashboard-approval.png"), fullPage: true });
    await expect(Promise.race([call.then(() => "resolved"), new Promise((r) => setTimeout(() => r("waiting"), 300))])).resolves.toBe("waiting");

    await c.getByRole("button", { name: "Approve" }).click();
    const result = await call;
    expect(result.isError).toBeFalsy();
    await c.waitFor({ state: "detached", ...WAIT });
    const read = (await mcp.callTool({ name: "fs__read_text_file", arguments: { path: "/workspace/dash-approved.txt" } })) as CallToolResult;
    expect(read.content[0]).toMatchObject({ type: "text", text: "hello from the dashboard\nsecond line\n" });
    await page.locator("#approvals-empty", { hasText: "Nothing is waiting" }).waitFor(WAIT);
  }, TEST_MS);

  it("shows hostile markup in a diff as text, and Deny with a reason refuses the call", async () => {
    const call = mcp.callTool({ name: "fs__write_file", arguments: { path: "/workspace/dash-denied.txt", content: `${HOSTILE}\n` } }) as Promise<CallToolResult>;
    call.catch(() => undefined);
    const c = card("dash-denied.txt");
    await c.waitFor(WAIT);
    expect(await c.locator(".diff .add").allTextContents()).toContain(`+${HOSTILE}`);
    expect(await c.locator("img, script").count()).toBe(0);
    expect(await page.evaluate('document.querySelectorAll("img").length')).toBe(0);
    expect(await page.title()).toBe("LuminaGuard");
    expect(await page.evaluate("typeof window.__pwned")).toBe("undefined");

    await c.getByRole("textbox", { name: "Reason for denying" }).fill("not this file");
    await c.getByRole("button", { name: "Deny" }).click();
    const result = await call;
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain("denied by user: not this file");
    await c.waitFor({ state: "detached", ...WAIT });
    const read = (await mcp.callTool({ name: "fs__read_text_file", arguments: { path: "/workspace/dash-denied.txt" } })) as CallToolResult;
    expect(read.isError).toBe(true);
  }, TEST_MS);

  it("lists the calls in the audit log, searches by server and tool, and verifies the chain", async () => {
    const rows = page.locator("#audit-rows tr");
    const row = (decision: string) => rows.filter({ hasText: "fs__write_file" }).filter({ hasText: decision });
    await row("approved").first().waitFor(WAIT);
    await row("denied").first().waitFor(WAIT);
    expect(await row("approved").first().textContent()).toContain("api:tcp:");
    expect(await row("denied").locator("td").nth(5).textContent()).toMatch(/^api:tcp:/);

    await page.getByRole("searchbox").fill("read_text");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    // Poll: the newest row before the search is already a read (the previous test's), so waiting for
    // a read in the first row can pass before the search's rows replaced the list.
    await expect.poll(async () => [...new Set(await rows.locator("td:nth-child(3)").allTextContents())], WAIT).toEqual(["fs__read_text_file"]);

    await page.getByRole("searchbox").fill("server:fs tool:write_file");
    await page.getByLabel("Decision").selectOption("denied");
    await rows.first().filter({ hasText: "denied" }).waitFor(WAIT);
    await expect.poll(async () => (await rows.allTextContents()).length, WAIT).toBe(1);
    expect(await rows.first().textContent()).toContain("fs__write_file");

    await page.getByRole("button", { name: "Verify chain" }).click();
    const verdict = page.locator("#audit-verify-result");
    await verdict.filter({ hasText: "Chain OK" }).waitFor(WAIT);
    if (process.env.LG_DASHBOARD_SCREENSHOT) await page.screenshot({ path: join(process.env.LG_DASHBOARD_SCREENSHOT, "dashboard-audit.png"), fullPage: true });
    expect(await verdict.textContent()).toMatch(/Chain OK: \d+ rows verified/);
  }, TEST_MS);

  it("lists a sandbox created through the API with backend, age and limits, and drops it when destroyed", async () => {
    const res = await tcp("/v1/sandboxes", { method: "POST", body: "{}" });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const row = page.locator(`#sandboxes-rows tr[data-sandbox-id="${id}"]`);
    await row.waitFor(WAIT);
    const cells = await row.locator("td").allTextContents();
    expect(cells.slice(0, 2)).toEqual([id, "namespace"]);
    expect(cells[2]).toMatch(/^\d+ s$/);
    expect(cells[3]).toBe("256 MiB");
    expect(cells[6]).toBe("none");
    expect((await tcp(`/v1/sandboxes/${id}`, { method: "DELETE" })).status).toBe(200);
    await row.waitFor({ state: "detached", ...WAIT });
  }, TEST_MS);

  it("shows a task's steps live once an agent is plugged in", async () => {
    const runner = new FakeRunner();
    daemon.setTaskRunner(runner);
    runner.emit({ type: "step-start", taskId: "task-1", data: { step: 1 } });
    const task = page.locator('#tasks-list li.task[data-task-id="task-1"]');
    await task.waitFor(WAIT);
    expect(await task.locator(".state").textContent()).toBe("running");
    expect(await task.locator(".task-text").textContent()).toBe("tidy the <b>workspace</b>");
    runner.emit({ type: "tool-call", taskId: "task-1", data: { step: 1, name: "fs__write_file", verdict: "red" } });
    await task.locator(".steps li", { hasText: "tool-call: step 1 · fs__write_file · red" }).waitFor(WAIT);
    expect(await task.locator(".steps li").allTextContents()).toEqual(["step-start: step 1", "tool-call: step 1 · fs__write_file · red"]);
  }, TEST_MS);

  it("asks for the token when the page is opened without one", async () => {
    const bare = await browser.newPage();
    try {
      await bare.goto(`${daemon.tcpUrl}/ui/`);
      await bare.locator("#auth", { hasText: "needs the daemon's token" }).waitFor(WAIT);
      expect(await bare.locator("#auth-url").textContent()).toBe(`${daemon.tcpUrl}/ui/#token=<daemon.tcp.token>`);
      expect(await bare.locator("#main").isHidden()).toBe(true);
    } finally {
      await bare.close();
    }
  }, TEST_MS);

  it("ran without page errors or CSP violations, and leaves no browser, sandbox or socket behind", async () => {
    expect(pageErrors).toEqual([]);
    await browser.close();
    expect(pidsWithMarker(profile)).toEqual([]);
    await mcp.close();
    await daemon.stop();
    expect(existsSync(daemon.socketPath)).toBe(false);
    const ids = [...apiSandboxIds, ...hubSandboxes.ids()];
    expect(ids.length).toBeGreaterThan(1);
    expect(await namespaceLeftovers(ids)).toEqual([]);
  }, TEST_MS);
});
