/**
 * The CLI with a running daemon (`bin/luminaguard daemon` as a process, the
 * real filesystem server in a namespace sandbox, approval.approver "api",
 * replay provider): `run` starts the task on the daemon and follows it; on a
 * pty the red edit is asked and approved there; without a TTY the run prints
 * the approvals hint and `approvals approve` from another process releases
 * it; Ctrl-C cancels the task on the daemon; `--embedded` still runs here;
 * `approvals` without a daemon is one clear error.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { bin, cleanEnv, CliProcesses } from "../helpers/cli-processes.js";
import { DaemonFixture } from "../helpers/daemon-fixture.js";
import type { Started } from "../helpers/loopback.js";
import { eventually } from "../helpers/procs.js";
import { liveSandboxes } from "../helpers/leftovers.js";
import { DaemonClient } from "../../src/daemon/client.js";

const README = "# Demo\n\nThis is teh demo.\n";
const FIXED = "# Demo\n\nThis is the demo.\n";
const TASK = "Fix the typo in README.md";

/** The environment without any provider variables (the host's must not leak into the test). */
function cli(args: string[], env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(bin, args, { input: "", encoding: "utf8", timeout: 60_000, env: cleanEnv(env) });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("luminaguard approvals without a daemon", () => {
  it("says approvals live in a running daemon: one line, exit 125", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lg-noapprovals-"));
    try {
      const cfg = join(dir, "config.json");
      await writeFile(cfg, JSON.stringify({ daemon: { socket: join(dir, "none.sock") } }));
      for (const args of [["approvals", "list"], ["approvals", "approve", "abcd"], ["approvals", "deny", "abcd", "--reason", "no"]]) {
        const r = cli([...args, "--config", cfg], { LUMINAGUARD_STATE_DIR: join(dir, "state") });
        expect(r.status, r.stderr).toBe(125);
        expect(r.stderr).toMatch(/Approvals live in a running daemon, and none answers on .*none\.sock.*\[E_DAEMON_NOT_RUNNING\]/);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const skip = namespaceSkipReason();
announceSkip("luminaguard run/approvals with a running daemon", skip);

describe.skipIf(skip)("luminaguard run / approvals with a running daemon", () => {
  let fx: DaemonFixture;
  let dir: string;
  let cfg: string;
  let socket: string;
  let env: Record<string, string>;
  let daemon: Started | undefined;
  const procs = new CliProcesses(() => env);

  beforeAll(async () => {
    fx = await DaemonFixture.create("lg-daemon-cli-run-", { agent: { provider: "replay" } });
    ({ dir, cfg, socket, env } = fx);
    daemon = await fx.start(30_000);
  }, 90_000);

  afterAll(async () => {
    procs.killAll();
    await fx?.cleanup("SIGKILL");
  });

  it("without a TTY: follows the task, prints how to approve, and `approvals approve` from another process releases the edit", async () => {
    await writeFile(join(dir, "ws", "README.md"), README, { mode: 0o666 });
    const run = procs.background(["run", "--provider", "replay", "--config", cfg, TASK]);
    try {
      const hinted = await eventually(() => /approvals approve (\S+) --socket /.test(run.err()), 45_000, 50);
      expect(hinted, run.err() + run.out()).toBe(true);
      const id = /approvals approve (\S+)/.exec(run.err())![1]!;
      const taskId = /task (\S+) runs on the daemon/.exec(run.err())?.[1];
      expect(taskId).toMatch(/^\d{8}-\d{6}-[0-9a-f]{6}$/);
      expect(run.err()).toMatch(/approval needed: fs__edit_file/);

      const list = cli(["approvals", "list", "--json", "--config", cfg], env);
      expect(list.status, list.stderr).toBe(0);
      // The pending card says which task it belongs to.
      expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ id, session: taskId })]);
      const show = cli(["approvals", "show", id.slice(0, 8), "--config", cfg], env);
      expect(show.status, show.stderr).toBe(0);
      expect(show.stdout).toMatch(/fs__edit_file {2}RED/);
      expect(show.stdout).toMatch(/^-This is teh demo\.$/m);
      expect(show.stdout).toMatch(/^\+This is the demo\.$/m);
      // The daemon's running task shows in `task list` while it waits.
      const tasks = cli(["task", "list", "--config", cfg], env);
      expect(tasks.stdout).toMatch(new RegExp(`${taskId}.*running.*\\(in the daemon\\)`));

      const approve = cli(["approvals", "approve", id, "--config", cfg], env);
      expect(approve.status, approve.stderr).toBe(0);
      expect(approve.stdout).toMatch(/^\+This is the demo\.$/m);
      expect(approve.stdout).toContain(`Approved ${id}`);

      expect(await run.exited, run.err() + run.out()).toBe(0);
      const out = run.out();
      expect(out).toMatch(/replay: → fs__edit_file .*\[RED/);
      expect(out).toMatch(/replay: {3}✓ approved by api:local/);
      expect(out).toMatch(/replay: done: the model finished \(4 steps, 3 tool calls, \d+ tokens\)/);
      expect(out).toContain(`luminaguard task show ${taskId}`);
      expect(await readFile(join(dir, "ws", "README.md"), "utf8")).toBe(FIXED);
      expect(cli(["approvals", "list", "--config", cfg], env).stdout).toBe("No approvals are waiting.\n");
      // A decided approval cannot be approved again.
      const again = cli(["approvals", "approve", id, "--config", cfg], env);
      expect(again.status).toBe(125);
      expect(again.stderr).toMatch(/E_APPROVAL_NOT_FOUND/);
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
    }
  }, 90_000);

  it.skipIf(announceSkip("daemon approval on a pty", existsSync("/usr/bin/script") ? undefined : "util-linux `script` is not installed (apt-get install bsdutils)"))(
    "on a terminal: the card is shown, answering y approves the red edit and the task ends done",
    async () => {
      await writeFile(join(dir, "ws", "README.md"), README, { mode: 0o666 });
      const r = await procs.onTerminal(`${bin} run --provider replay --config ${cfg} '${TASK}'`, ["y"]);
      expect(r.status, r.output).toBe(0);
      expect(r.output).toMatch(/runs on the daemon/);
      expect(r.output).toMatch(/fs__edit_file {2}RED/);
      expect(r.output).toMatch(/\+This is the demo\./);
      expect(r.output).toMatch(/Approve\? \[y\]es \/ \[n\]o: /);
      expect(r.output).toContain("Approved.");
      expect(r.output).toMatch(/replay: done: the model finished/);
      expect(await readFile(join(dir, "ws", "README.md"), "utf8")).toBe(FIXED);
      // And n denies: the model is told, the file stays.
      await writeFile(join(dir, "ws", "README.md"), README, { mode: 0o666 });
      const n = await procs.onTerminal(`${bin} run --provider replay --config ${cfg} '${TASK}'`, ["n"]);
      expect(n.status, n.output).toBe(0);
      expect(n.output).toMatch(/✗ denied: denied by user/);
      expect(await readFile(join(dir, "ws", "README.md"), "utf8")).toBe(README);
    },
    90_000,
  );

  it("Ctrl-C cancels the task on the daemon: exit 130", async () => {
    await writeFile(join(dir, "ws", "README.md"), README, { mode: 0o666 });
    const run = procs.background(["run", "--config", cfg, TASK]);
    try {
      // The task waits at the cliff: a good moment to give up on it.
      expect(await eventually(() => /approvals approve/.test(run.err()), 45_000, 50), run.err()).toBe(true);
      const taskId = /task (\S+) runs on the daemon/.exec(run.err())![1]!;
      run.child.kill("SIGINT");
      expect(await run.exited, run.err() + run.out()).toBe(130);
      expect(run.err()).toContain(`cancelling task ${taskId} on the daemon`);
      expect(run.out()).toMatch(/cancelled/);
      const status = await new DaemonClient(socket).json<{ state: string }>("GET", `/v1/tasks/${taskId}`);
      expect(status.state).toBe("cancelled");
      expect(cli(["approvals", "list", "--json", "--config", cfg], env).stdout.trim()).toBe("[]");
      expect(await readFile(join(dir, "ws", "README.md"), "utf8")).toBe(README);
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
    }
  }, 90_000);

  it("run --embedded runs in this process even with a daemon running", async () => {
    await writeFile(join(dir, "ws", "README.md"), README, { mode: 0o666 });
    const before = (await new DaemonClient(socket).json<{ tasks: { id: string }[] }>("GET", "/v1/tasks")).tasks.length;
    // Embedded has no approval queue: the policy approver (no TTY) denies the edit.
    const r = cli(["run", "--embedded", "--provider", "replay", "--config", cfg, TASK], { ...env, LUMINAGUARD_APPROVAL__APPROVER: "auto" });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).not.toMatch(/runs on the daemon/);
    expect(r.stdout).toMatch(/✗ denied: denied by policy/);
    const after = (await new DaemonClient(socket).json<{ tasks: { id: string }[] }>("GET", "/v1/tasks")).tasks.length;
    expect(after).toBe(before);
    expect(await readFile(join(dir, "ws", "README.md"), "utf8")).toBe(README);
  }, 90_000);

  it("SIGTERM stops the daemon: socket removed, no sandbox left", async () => {
    await daemon!.stop("SIGTERM");
    expect(daemon!.child.exitCode, daemon!.stderr()).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(await liveSandboxes(join(dir, "runtime"))).toEqual([]);
    // With the daemon gone, `run` is embedded again and approvals say where they live.
    const r = cli(["approvals", "list", "--config", cfg], env);
    expect(r.status).toBe(125);
  }, 60_000);
});
