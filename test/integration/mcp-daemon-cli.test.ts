/**
 * `luminaguard mcp list` and `mcp call` with a running daemon (`bin/luminaguard
 * daemon` as a process, the real filesystem server in a namespace sandbox,
 * approval.approver "api"): they go through the daemon's /mcp gateway over its
 * socket. list prints the same tools and classification as embedded; a green
 * call returns its listing; a red call without a TTY prints the approvals hint
 * and `approvals approve` from another process releases it; on a pty, y
 * approves and n denies; --embedded runs here; --socket to nothing is an error.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { bin, cleanEnv, CliProcesses } from "../helpers/cli-processes.js";
import { DaemonFixture } from "../helpers/daemon-fixture.js";
import { eventually } from "../helpers/procs.js";
import { DaemonClient } from "../../src/daemon/client.js";

const skip = namespaceSkipReason();
announceSkip("luminaguard mcp list/call with a running daemon", skip);
const noScript = existsSync("/usr/bin/script") ? undefined : "util-linux `script` is not installed (apt-get install bsdutils)";

describe.skipIf(skip)("luminaguard mcp list / call with a running daemon", () => {
  let fx: DaemonFixture;
  let dir: string;
  let cfg: string;
  let socket: string;
  let env: Record<string, string>;
  const procs = new CliProcesses(() => env);
  const ws = (name: string): string => join(dir, "ws", name);

  function cli(args: string[], extra: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(bin, args, { input: "", encoding: "utf8", timeout: 60_000, env: cleanEnv({ ...env, ...extra }) });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  interface AuditRow {
    tool: string;
    decision: string;
    decidedBy: string | null;
    session: string | null;
  }
  const auditRows = (): AuditRow[] => JSON.parse(cli(["audit", "list", "--json", "--db", join(dir, "state", "audit.db")]).stdout) as AuditRow[];

  beforeAll(async () => {
    fx = await DaemonFixture.create("lg-mcp-daemon-cli-");
    ({ dir, cfg, socket, env } = fx);
    await writeFile(ws("a.txt"), "one\n", { mode: 0o666 });
    await fx.start(30_000);
  }, 90_000);

  afterAll(async () => {
    procs.killAll();
    await fx?.cleanup("SIGTERM");
  });

  it("list shows the daemon's server and its classified tools, the same as embedded", () => {
    const r = cli(["mcp", "list", "--config", cfg]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^fs {2}ready {2}.*filesystem\\.mjs /workspace in a namespace sandbox, in the daemon \\(${socket.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\)$`, "m"));
    expect(r.stdout).toMatch(/^ {4}green {2}fs__read_text_file {2}\(\w+: .+\)$/m);
    expect(r.stdout).toMatch(/^ {4}RED {4}fs__write_file {2}\(\w+: .+\)$/m);

    type Listed = { servers: { name: string; state: string }[]; tools: { name: string; server: string; description: string | null; classification: { verdict: string; risk: string; reason: string; rule: string } }[] };
    const onDaemon = JSON.parse(cli(["mcp", "list", "--json", "--config", cfg]).stdout) as Listed;
    expect(onDaemon.servers).toEqual([expect.objectContaining({ name: "fs", state: "ready" })]);
    const move = onDaemon.tools.find((t) => t.name === "fs__move_file");
    expect(move).toMatchObject({ server: "fs", classification: { verdict: "red" } });
    expect(move?.description).not.toMatch(/needs approval/);
    // Embedded starts its own server here: the tools and their verdict, risk, reason and rule must agree.
    const embedded = cli(["mcp", "list", "--json", "--embedded", "--config", cfg], { LUMINAGUARD_APPROVAL__APPROVER: "auto" });
    expect(embedded.status, embedded.stderr).toBe(0);
    expect(onDaemon.tools).toEqual((JSON.parse(embedded.stdout) as Listed).tools);
  }, 90_000);

  it("call runs a green tool on the daemon and prints the listing; the audit row names the CLI's session", () => {
    const r = cli(["mcp", "call", "fs__list_directory", "--args", '{"path":"/workspace"}', "--config", cfg]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\[FILE\] a\.txt$/m);
    // The daemon wrote the row (its audit db): the call went through its hub, under this CLI's own session.
    expect(auditRows().find((row) => row.tool === "list_directory")).toMatchObject({ decision: "auto", session: expect.stringMatching(/^cli-[0-9a-f]{8}$/) });
    // Unknown servers are the caller's mistake, as embedded.
    const bad = cli(["mcp", "call", "nope__read", "--config", cfg]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/runs no MCP server 'nope' \(running: fs\)/);
  }, 60_000);

  it("a red call without a TTY prints the approvals hint and waits; `approvals approve` from another process releases it", async () => {
    await writeFile(ws("a.txt"), "one\n", { mode: 0o666 });
    const call = procs.background(["mcp", "call", "fs__write_file", "--args", '{"path":"/workspace/a.txt","content":"two\\n"}', "--config", cfg]);
    try {
      const hinted = await eventually(() => /approvals approve (\S+) --socket /.test(call.err()), 45_000, 50);
      expect(hinted, call.err() + call.out()).toBe(true);
      expect(call.err()).toMatch(/approval needed: fs__write_file/);
      const id = /approvals approve (\S+)/.exec(call.err())![1]!;
      const pending = JSON.parse(cli(["approvals", "list", "--json", "--config", cfg]).stdout) as { id: string; session: string }[];
      expect(pending).toEqual([expect.objectContaining({ id, session: expect.stringMatching(/^cli-[0-9a-f]{8}$/) })]);
      // Still waiting: nothing written yet.
      expect(await readFile(ws("a.txt"), "utf8")).toBe("one\n");

      const approve = cli(["approvals", "approve", id, "--config", cfg]);
      expect(approve.status, approve.stderr).toBe(0);
      expect(await call.exited, call.err() + call.out()).toBe(0);
      expect(await readFile(ws("a.txt"), "utf8")).toBe("two\n");
      expect(auditRows().find((row) => row.tool === "write_file")).toMatchObject({ decision: "approved", decidedBy: "api:local" });
    } finally {
      if (call.child.exitCode === null) call.child.kill("SIGKILL");
    }
  }, 90_000);

  it("Ctrl-C on a waiting red call withdraws its card on the daemon: exit 130, file untouched", async () => {
    await writeFile(ws("a.txt"), "one\n", { mode: 0o666 });
    const call = procs.background(["mcp", "call", "fs__write_file", "--args", '{"path":"/workspace/a.txt","content":"six\\n"}', "--config", cfg]);
    try {
      expect(await eventually(() => /approvals approve/.test(call.err()), 45_000, 50), call.err()).toBe(true);
      call.child.kill("SIGINT");
      expect(await call.exited, call.err() + call.out()).toBe(130);
      expect(call.err()).toMatch(/cancelling fs__write_file on the daemon/);
      const client = new DaemonClient(socket);
      expect(await eventually(async () => (await client.json<{ pending: unknown[] }>("GET", "/v1/approvals")).pending.length === 0, 15_000, 50)).toBe(true);
      expect(await readFile(ws("a.txt"), "utf8")).toBe("one\n");
    } finally {
      if (call.child.exitCode === null) call.child.kill("SIGKILL");
    }
  }, 90_000);

  it.skipIf(announceSkip("mcp call on a daemon, approval on a pty", noScript))(
    "on a terminal: the card is shown, y approves (exit 0) and n denies (exit 1)",
    async () => {
      await writeFile(ws("a.txt"), "one\n", { mode: 0o666 });
      const write = (content: string): string => `${bin} mcp call fs__write_file --args '{"path":"/workspace/a.txt","content":"${content}\\n"}' --config ${cfg}`;
      const yes = await procs.onTerminal(write("three"), ["y"]);
      expect(yes.status, yes.output).toBe(0);
      expect(yes.output).toMatch(/fs__write_file {2}RED/);
      expect(yes.output).toMatch(/\+three/);
      expect(yes.output).toMatch(/Approve\? \[y\]es \/ \[n\]o: /);
      expect(yes.output).toContain("Approved.");
      expect(await readFile(ws("a.txt"), "utf8")).toBe("three\n");

      const no = await procs.onTerminal(write("four"), ["n"]);
      expect(no.status, no.output).toBe(1);
      expect(no.output).toContain("Denied.");
      expect(no.output).toMatch(/the call was denied \(api:local\)/);
      expect(await readFile(ws("a.txt"), "utf8")).toBe("three\n");
    },
    90_000,
  );

  it("--embedded runs here even with a daemon running: the policy approver (no TTY) denies the red call at once", async () => {
    await writeFile(ws("a.txt"), "one\n", { mode: 0o666 });
    const r = cli(["mcp", "call", "fs__write_file", "--embedded", "--args", '{"path":"/workspace/a.txt","content":"five\\n"}', "--config", cfg], { LUMINAGUARD_APPROVAL__APPROVER: "auto" });
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(r.stdout).toMatch(/denied by policy/);
    expect(r.stderr).not.toMatch(/approvals approve/);
    expect(await new DaemonClient(socket).json<{ pending: unknown[] }>("GET", "/v1/approvals")).toEqual({ pending: [] });
    expect(await readFile(ws("a.txt"), "utf8")).toBe("one\n");
  }, 60_000);

  it("--socket to a socket nobody listens on is an error, not a reason to run embedded", () => {
    const r = cli(["mcp", "list", "--socket", join(dir, "none.sock"), "--config", cfg]);
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/none answers on .*none\.sock.*\[E_DAEMON_NOT_RUNNING\]/);
  });
});
