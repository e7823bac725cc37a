/**
 * `luminaguard mcp list` and `mcp call` against the real filesystem server in a
 * sandbox: classification shown per tool, green calls run, red calls without a
 * person are denied by policy (exit 1) unless approval.policy.allow names them,
 * and bad input gets a one-line error with exit 2.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { bin, CliProcesses } from "../helpers/cli-processes.js";
import { stageMcpServers, type StagedServers } from "../helpers/mcp-servers.js";

const skip = namespaceSkipReason();
announceSkip("luminaguard mcp list/call", skip);

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  // stdin is not a TTY here: no terminal approver, so the policy approver decides.
  const r = spawnSync(bin, args, { input: "", encoding: "utf8", timeout: 60_000, env: { ...process.env, NO_COLOR: "1" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(skip)("luminaguard mcp list / call", () => {
  let staged: StagedServers;
  let dir: string;
  const config = (allow: string[]) => ({
    mcp: { servers: { fs: { command: staged.node, args: ["/opt/mcp/filesystem.mjs", "/workspace"], sandbox: { mounts: [staged.mount], workspace: join(dir, "ws") } } } },
    approval: { approver: "auto", policy: { allow } },
    audit: { path: join(dir, "audit.db") },
  });

  beforeAll(async () => {
    staged = await stageMcpServers(["filesystem"]);
    dir = await mkdtemp(join(tmpdir(), "lg-mcpcli-"));
    await import("node:fs/promises").then(async (fs) => {
      await fs.chmod(dir, 0o755);
      await fs.mkdir(join(dir, "ws"), { mode: 0o777 });
      await fs.chmod(join(dir, "ws"), 0o777);
      await fs.writeFile(join(dir, "ws", "a.txt"), "one\n", { mode: 0o666 });
    });
    await writeFile(join(dir, "deny.json"), JSON.stringify(config([])));
    await writeFile(join(dir, "allow.json"), JSON.stringify(config(["fs__write_*"])));
  }, 60_000);

  afterAll(async () => {
    await staged?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("list shows the server, its state and each tool's classification", () => {
    const r = cli(["mcp", "list", "--config", join(dir, "deny.json")]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^fs {2}ready/m);
    expect(r.stdout).toMatch(/green\s+fs__read_text_file/);
    expect(r.stdout).toMatch(/RED\s+fs__write_file/);
    const json = JSON.parse(cli(["mcp", "list", "--json", "--config", join(dir, "deny.json")]).stdout) as { tools: { name: string; classification: { verdict: string } }[] };
    expect(json.tools.find((t) => t.name === "fs__move_file")?.classification.verdict).toBe("red");
  }, 60_000);

  it("call runs a green tool and prints its text", () => {
    const r = cli(["mcp", "call", "fs__read_text_file", "--args", '{"path":"/workspace/a.txt"}', "--config", join(dir, "deny.json")]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe("one\n");
  }, 60_000);

  it("a red call with nobody to ask is denied by policy: exit 1 and the file is untouched", async () => {
    const r = cli(["mcp", "call", "fs__write_file", "--args", '{"path":"/workspace/a.txt","content":"two\\n"}', "--config", join(dir, "deny.json")]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/denied by policy/);
    expect(await import("node:fs/promises").then((fs) => fs.readFile(join(dir, "ws", "a.txt"), "utf8"))).toBe("one\n");
  }, 60_000);

  it("approval.policy.allow lets a named red call through", async () => {
    const r = cli(["mcp", "call", "fs__write_file", "--args", '{"path":"/workspace/a.txt","content":"two\\n"}', "--config", join(dir, "allow.json")]);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(await import("node:fs/promises").then((fs) => fs.readFile(join(dir, "ws", "a.txt"), "utf8"))).toBe("two\n");
    const audit = JSON.parse(cli(["audit", "list", "--json", "--db", join(dir, "audit.db")]).stdout) as { tool: string; decision: string; decidedBy: string }[];
    expect(audit[0]).toMatchObject({ tool: "write_file", decision: "approved", decidedBy: "policy" });
  }, 60_000);

  // A real terminal (a pty from util-linux `script`): the person sees the card, asks for the full diff, then answers.
  it.skipIf(announceSkip("terminal approval on a pty", existsSync("/usr/bin/script") ? undefined : "util-linux `script` is not installed (apt-get install bsdutils)"))("on a terminal, asks y/n/view and acts on the answer", async () => {
    const ask = (answers: string[]) => {
      const call = `${bin} mcp call fs__write_file --args '{"path":"/workspace/a.txt","content":"three\\n"}' --config ${join(dir, "deny.json")}`;
      // Answers arrive after the prompt: each is sent once the previous output contains the prompt again.
      return new CliProcesses().onTerminal(call, answers);
    };
    const denied = await ask(["v", "n"]);
    expect(denied.output).toMatch(/Approve\? \[y\]es \/ \[n\]o \/ \[v\]iew full diff/);
    expect(denied.output).toMatch(/\+three/);
    expect(denied.output.match(/Approve\?/g)?.length).toBe(2);
    expect(denied.status).toBe(1);
    expect(await import("node:fs/promises").then((fs) => fs.readFile(join(dir, "ws", "a.txt"), "utf8"))).not.toBe("three\n");
    const approved = await ask(["y"]);
    expect(approved.status, approved.output).toBe(0);
    expect(await import("node:fs/promises").then((fs) => fs.readFile(join(dir, "ws", "a.txt"), "utf8"))).toBe("three\n");
    const audit = JSON.parse(cli(["audit", "list", "--json", "--db", join(dir, "audit.db")]).stdout) as { decision: string; decidedBy: string }[];
    expect(audit[0]?.decidedBy).toMatch(/^terminal:/);
  }, 60_000);

  it.each([
    [["mcp", "call", "nosep"], /server__tool/],
    [["mcp", "call", "fs__read_text_file", "--args", "{not json"], /--args is not valid JSON/],
    [["mcp", "call", "fs__read_text_file", "--args", "[1]"], /must be a JSON object/],
    [["mcp", "call", "other__x"], /No MCP server 'other'/],
    [["mcp", "serve"], /one of --stdio or --http/],
    [["mcp", "serve", "--http", "http"], /port number/],
  ])("%j fails with one clear line and exit 2", (args, pattern) => {
    const r = cli([...args, "--config", join(dir, "deny.json")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
