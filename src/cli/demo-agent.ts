/**
 * The demo's agent part: the replay agent (a recorded model, labelled as such)
 * fixes a typo through the real @modelcontextprotocol/server-filesystem running
 * in a sandbox. Listing and reading are green and run at once; the edit is red,
 * shows its Diff Card and waits: a person at the terminal decides, otherwise the
 * demo approves it and says so. Ends with the audit trail, verified.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../config/load.js";
import type { BackendName, Sandbox } from "../sandbox/types.js";
import type { SandboxSource } from "../mcp/sandboxes.js";
import { openHub } from "../mcp/open-hub.js";
import { runTask } from "../agent/loop.js";
import { ReplayProvider } from "../agent/providers/replay.js";
import { loadRecording } from "../agent/providers/recording.js";
import { TranscriptWriter, newTaskId } from "../agent/transcript.js";
import { TerminalApprover } from "../approval/approvers/terminal.js";
import { PolicyApprover } from "../approval/approvers/policy.js";
import { renderCardText } from "../approval/render.js";
import type { Approver, DiffCard } from "../approval/types.js";
import { AgentDisplay } from "./agent-display.js";
import { style } from "./style.js";

const say = (line = ""): void => void process.stdout.write(`${line}\n`);

/** The bundled filesystem server (scripts/bundle-mcp-servers.mjs), found from the source or the CLI bundle. */
function serverBundle(): string | undefined {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, "dist", "mcp-servers", "filesystem.mjs");
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Without a terminal nobody can answer: approve the edit, and say that it was the demo that did. */
function unattendedApprover(): Approver {
  const policy = new PolicyApprover({ allow: ["fs__edit_file"] });
  return {
    name: "demo",
    async decide(card: DiffCard, opts) {
      say(renderCardText(card, { color: !process.env.NO_COLOR && process.stdout.isTTY === true }).replace(/^/gm, "    "));
      say(style.yellow("    (no terminal to ask: the demo approves this edit itself; run `make demo` in a terminal to decide)"));
      return policy.decide(card, opts);
    },
  };
}

/**
 * Run the agent part on `backend` (sandboxes from `source`, which the caller keeps and closes).
 * Returns false when something went the wrong way (the edit ran without a decision, the chain broke).
 */
export async function agentDemo(source: SandboxSource, backend: BackendName, shape: { memoryBytes?: string; pids?: number } = {}): Promise<boolean> {
  say(style.bold(`7. An agent behind the Approval Cliff (MCP filesystem server in a ${backend} sandbox)`));
  const bundle = serverBundle();
  if (!bundle) {
    say(`  ${style.yellow("skipped")}: the filesystem MCP server is not bundled (run \`make build\`)`);
    return true;
  }
  if (backend !== "microvm" && !existsSync("/usr/bin/node")) {
    say(`  ${style.yellow("skipped")}: the sandbox needs /usr/bin/node from the host to run the MCP server`);
    return true;
  }
  const dir = await mkdtemp(join(tmpdir(), "lg-demo-"));
  const made: Sandbox[] = [];
  const recording: SandboxSource = {
    create: async (spec) => {
      const sb = await source.create(spec);
      made.push(sb);
      return sb;
    },
    close: async () => undefined,
  };
  const config = parseConfig({
    mcp: {
      servers: {
        fs: {
          command: "/usr/bin/node",
          args: ["/tmp/filesystem.mjs", "/workspace"],
          files: [{ source: resolve(bundle), target: "/tmp/filesystem.mjs" }],
          sandbox: { backend, limits: { memory: shape.memoryBytes ?? "256M", pids: shape.pids ?? 64 } },
        },
      },
      connectTimeoutSeconds: 120,
    },
    audit: { path: join(dir, "audit.db") },
  });
  const tty = process.stdin.isTTY && process.stdout.isTTY;
  const approver = tty ? new TerminalApprover({ input: process.stdin, output: process.stdout, color: !process.env.NO_COLOR }) : unattendedApprover();
  const opened = openHub(config, { approver, session: "demo", sandboxes: recording });
  try {
    const t0 = performance.now();
    await opened.hub.start();
    const status = opened.hub.status()[0]!;
    if (status.state !== "ready") {
      say(`  ${style.red("server did not start")}: ${status.lastError ?? status.state}`);
      return false;
    }
    say(`  started the MCP server in sandbox ${made[0]!.id} in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${opened.hub.tools().length} tools, ${opened.hub.tools().filter((t) => t.classification.verdict === "red").length} of them red`);
    await made[0]!.files.write("/workspace/README.md", "# Notes\n\nRead teh docs before you change anything.\n");
    const recordingFile = loadRecording("sample:fs-edit");
    const display = new AgentDisplay(process.stdout, false);
    const transcript = TranscriptWriter.create(join(dir, "tasks"), { id: newTaskId() });
    const result = await runTask({
      task: recordingFile.task ?? "Fix the typo in README.md",
      hub: opened.hub,
      provider: new ReplayProvider(recordingFile),
      limits: { maxSteps: 10, timeoutMs: 300_000, tokenBudget: 100_000 },
      approver,
      onEvent: display.onEvent,
      transcript,
    }).finally(() => transcript.close());
    display.result({ ...result, transcriptPath: null }, true);
    const after = new TextDecoder().decode(await made[0]!.files.read("/workspace/README.md"));
    say(`  README.md now says: ${style.bold(after.split("\n")[2] ?? "")}`);

    say(style.bold("  audit trail"));
    const rows = opened.audit!.list({ limit: 20 }).reverse();
    for (const r of rows) {
      const verdict = r.verdict === "red" ? style.red("RED  ") : style.green("green");
      say(`    #${r.id} ${r.time.slice(11, 19)} ${verdict} ${`${r.server}__${r.tool}`.padEnd(22)} ${r.decision.padEnd(8)} ${(r.decidedBy ?? "").padEnd(14)} ${r.latencyMs.toFixed(0)} ms${r.error ? `  ${style.dim(r.error.slice(0, 50))}` : ""}`);
    }
    const verify = opened.audit!.verify();
    say(`  audit chain: ${verify.ok ? style.green(`verified, ${verify.rows} rows hash-chained`) : style.red(`BROKEN: ${verify.problems.map((p) => p.message).join("; ")}`)}`);
    // The edit must have run only with a decision: an approved edit changed the file, a denied one did not.
    const edit = rows.find((r) => r.tool === "edit_file");
    const consistent = edit !== undefined && (edit.decision === "approved" ? after.includes("the docs") : after.includes("teh docs"));
    return verify.ok && consistent;
  } finally {
    await opened.close();
    await Promise.allSettled(made.map((sb) => sb.destroy()));
    await rm(dir, { recursive: true, force: true });
  }
}
