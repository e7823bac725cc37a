/**
 * `luminaguard run`, `chat` and `task` end to end (the bundled CLI): the
 * built-in replay against server-filesystem in a sandbox, non-TTY so the
 * policy approver denies the red edit; the transcript read back by `task
 * list/show`; no provider → exit 2 with the variables to set; Ctrl-C → exit
 * 130 with the task's sandboxes destroyed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { cleanEnv } from "../helpers/cli-processes.js";
import { stageMcpServers, type StagedServers } from "../helpers/mcp-servers.js";
import { startLlmServer, type LlmServer } from "../helpers/agent-llm.js";
import { liveSandboxes } from "../helpers/leftovers.js";

const skip = namespaceSkipReason();
announceSkip("luminaguard run/chat/task", skip);
const bin = resolve(import.meta.dirname, "../../bin/luminaguard");
const README = "# Demo\n\nThis is teh demo.\n";

describe.skipIf(skip)("luminaguard run / chat / task", () => {
  let staged: StagedServers;
  let dir: string;
  let cfg: string;
  let runtime: string;

  const cli = (args: string[], opts: { input?: string; env?: Record<string, string> } = {}) => {
    const r = spawnSync(bin, args, { input: opts.input ?? "", encoding: "utf8", timeout: 90_000, env: cleanEnv({ LUMINAGUARD_RUNTIME_DIR: runtime, ...opts.env }) });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    staged = await stageMcpServers(["filesystem"]);
    dir = await mkdtemp(join(tmpdir(), "lg-agent-cli-"));
    await chmod(dir, 0o755);
    runtime = join(dir, "runtime");
    await mkdir(runtime, { mode: 0o755 });
    await mkdir(join(dir, "ws"), { mode: 0o777 });
    await chmod(join(dir, "ws"), 0o777);
    await writeFile(join(dir, "ws", "README.md"), README, { mode: 0o666 });
    cfg = join(dir, "config.json");
    await writeFile(
      cfg,
      JSON.stringify({
        mcp: { servers: { fs: { command: staged.node, args: ["/opt/mcp/filesystem.mjs", "/workspace"], sandbox: { mounts: [staged.mount], workspace: join(dir, "ws") } } } },
        approval: { approver: "auto" },
        audit: { path: join(dir, "state", "audit.db") },
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await staged?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  let taskId = "";

  it("run --provider replay plays the sample; without a terminal the policy denies the red edit", async () => {
    const r = cli(["run", "--provider", "replay", "--transcript", "sample:fs-edit", "--config", cfg, "Fix the typo in README.md"]);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const lines = r.stdout.trim().split("\n");
    // Every line says it is a replay.
    expect(lines.every((l) => l.startsWith("replay: ")), r.stdout).toBe(true);
    expect(r.stdout).toMatch(/→ fs__list_directory \{"path":"\/workspace"\}\s+\[green\]/);
    expect(r.stdout).toMatch(/→ fs__edit_file .*\[RED/);
    expect(r.stdout).toMatch(/✗ denied: denied by policy/);
    expect(r.stdout).toMatch(/replay: done: the model finished \(4 steps, 3 tool calls, 1 denied/);
    expect(await readFile(join(dir, "ws", "README.md"), "utf8")).toBe(README);
    taskId = /task show (\S+)\)/.exec(r.stdout)?.[1] ?? "";
    expect(taskId).toMatch(/^\d{8}-\d{6}-[0-9a-f]{6}$/);
    const files = await readdir(join(dir, "state", "tasks"));
    expect(files).toContain(`${taskId}.jsonl`);
    // The task's sandboxes are gone once the command has exited.
    expect(await liveSandboxes(runtime)).toEqual([]);
  }, 90_000);

  it("task list and task show read the transcript back", () => {
    const list = cli(["task", "list", "--json", "--config", cfg]);
    expect(list.status, list.stderr).toBe(0);
    const tasks = JSON.parse(list.stdout) as { id: string; status: string; provider: string; task: string }[];
    expect(tasks.find((t) => t.id === taskId)).toMatchObject({ status: "done", provider: "replay", task: "Fix the typo in README.md" });
    expect(cli(["task", "list", "--config", cfg]).stdout).toContain(taskId);
    const show = cli(["task", "show", taskId, "--config", cfg]);
    expect(show.status, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/replay: \[3\] → fs__edit_file .*\[RED\]/);
    expect(show.stdout).toMatch(/✗ denied \(policy\): denied by policy/);
    expect(show.stdout).toMatch(/replay: done: the model finished/);
    const json = JSON.parse(cli(["task", "show", taskId, "--json", "--config", cfg]).stdout) as { type: string }[];
    expect(json.map((r) => r.type)).toContain("tool-result");
    const missing = cli(["task", "show", "20990101-000000-ffffff", "--config", cfg]);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/E_AGENT_UNKNOWN_TASK/);
  });

  it("run --json prints one event a line, each marked as replay", () => {
    const r = cli(["run", "--json", "--provider", "replay", "--config", cfg, "Fix the typo"]);
    expect(r.status, r.stderr).toBe(0);
    const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { type: string; replay?: boolean; status?: string });
    expect(events.every((e) => e.replay === true)).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: "result", status: "done", denied: 1 });
  }, 90_000);

  it("run with no provider says which variables to set, exit 2", () => {
    const r = cli(["run", "--config", cfg, "anything"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/E_AGENT_NO_PROVIDER/);
    for (const v of ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OLLAMA_HOST", "--provider replay --transcript FILE"]) expect(r.stderr).toContain(v);
  });

  it("chat takes lines from a pipe as turns of one conversation and ends at /exit", () => {
    const r = cli(["chat", "--provider", "replay", "--config", cfg], { input: "Fix the typo\nand again\n/exit\nnot reached\n" });
    expect(r.status, r.stderr).toBe(0);
    // The recording goes on across turns: the first turn plays all of it, the second finds it finished.
    expect(r.stdout.match(/replay: done:/g)).toHaveLength(2);
    expect(r.stdout).toContain("the recording has no more turns");
    expect(r.stdout).not.toContain("not reached");
  }, 90_000);

  describe("Ctrl-C", () => {
    let llm: LlmServer;
    afterAll(() => llm?.close());

    it("cancels the task: exit 130, and its sandboxes are destroyed", async () => {
      let arrived: () => void = () => undefined;
      const requested = new Promise<void>((r) => (arrived = r));
      llm = await startLlmServer(() => {
        arrived();
        return { hang: true };
      });
      const child = spawn(bin, ["run", "--provider", "openai", "--config", cfg, "wait forever"], {
        env: cleanEnv({ LUMINAGUARD_RUNTIME_DIR: runtime, OPENAI_API_KEY: "sk-test", OPENAI_BASE_URL: `${llm.url}/v1` }),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      try {
        await requested;
        // The fs server's sandbox exists while the task runs.
        expect((await liveSandboxes(runtime)).length).toBeGreaterThan(0);
        child.kill("SIGINT");
        expect(await exited, out).toBe(130);
      } finally {
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      expect(out).toMatch(/cancelled: cancelled by Ctrl-C/);
      expect(await liveSandboxes(runtime)).toEqual([]);
    }, 90_000);
  });
});
