/** `luminaguard task list|show`: the agent tasks that ran, read back from their transcripts. */
import { Command } from "commander";
import { loadConfig } from "../config/load.js";
import { listTasks, readTranscript, tasksDir, type TaskSummary, type TranscriptRecord } from "../agent/transcript.js";
import { style } from "./style.js";

interface Flags {
  json?: boolean;
  config?: string;
}

/** The `task` command and its subcommands. */
export function taskCommand(): Command {
  const cmd = new Command("task").description("Agent tasks (luminaguard run / chat): list them, show one step by step.");
  cmd
    .command("list")
    .description("List tasks, newest first.")
    .option("--json", "print as JSON")
    .option("--config <file>", "config file (the tasks live next to audit.path)")
    .action(async (flags: Flags) => {
      const config = loadConfig(flags.config);
      const dir = tasksDir(config.audit.path);
      // A running daemon's tasks too (they may not have a transcript here).
      const tasks = await import("./task-daemon.js").then((m) => m.withDaemonTasks(listTasks(dir), config, dir));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(tasks, null, 2)}\n`);
        return;
      }
      if (tasks.length === 0) {
        process.stdout.write('No tasks yet. Start one with: luminaguard run "what to do"\n');
        return;
      }
      for (const t of tasks) process.stdout.write(`${listLine(t)}\n`);
    });
  cmd
    .command("show")
    .description("Show one task: the task, every model turn, tool call and result, and how it ended.")
    .argument("<id>", "task id from `task list`")
    .option("--json", "print the transcript records as a JSON array")
    .option("--config <file>", "config file (the tasks live next to audit.path)")
    .action((id: string, flags: Flags) => {
      const records = readTranscript(id, tasksDir(loadConfig(flags.config).audit.path));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
        return;
      }
      const replay = records[0]?.type === "task" && records[0].provider === "replay";
      for (const r of records) for (const line of showLines(r)) process.stdout.write(`${replay ? "replay: " : ""}${line}\n`);
    });
  return cmd;
}

function listLine(t: TaskSummary & { daemon?: string }): string {
  const status = t.status === "done" ? style.green(t.status) : t.status === "running" ? style.yellow(t.status) : style.red(t.status);
  const task = t.task.length > 60 ? `${t.task.slice(0, 59)}…` : t.task;
  const tokens = t.usage ? `${t.usage.inputTokens + t.usage.outputTokens} tok` : "";
  return [t.id, t.startedAt.slice(0, 19).replace("T", " "), status.padEnd(9), `${t.provider}/${t.model}`, t.steps === null ? "" : `${t.steps} steps`, tokens, JSON.stringify(task), t.daemon === "running" ? style.dim("(in the daemon)") : ""].filter(Boolean).join("  ");
}

function showLines(r: TranscriptRecord): string[] {
  switch (r.type) {
    case "task":
      return [style.bold(`task ${r.id}`), `  ${r.task}`, style.dim(`  ${r.provider} ${r.model} · ${r.tools.length} tools · max ${r.limits.maxSteps} steps, ${Math.round(r.limits.timeoutMs / 1000)} s, ${r.limits.tokenBudget} tokens · ${r.t}`)];
    case "message":
      if (r.message.role === "assistant" && r.message.text) return [`[${r.step}] model: ${r.message.text}`];
      return [];
    case "tool-call":
      return [`[${r.step}] → ${r.name} ${JSON.stringify(r.args)}  [${r.verdict === "red" ? "RED" : (r.verdict ?? "unknown")}]`];
    case "tool-result":
      return [`      ${r.outcome?.decision === "denied" ? "✗ denied" : r.ok ? "✓" : "✗ failed"}${r.outcome?.decidedBy && r.outcome.decision !== "auto" ? ` (${r.outcome.decidedBy})` : ""}: ${r.summary}`];
    case "notice":
      return [`[${r.step}] ! ${r.notice.message}`];
    case "usage":
      return [style.dim(`[${r.step}] tokens ${r.usage.inputTokens} in / ${r.usage.outputTokens} out${r.keyIndex && r.keyIndex > 1 ? ` (key ${r.keyIndex})` : ""}`)];
    case "end":
      return [`${r.status === "done" ? style.green("done") : style.red(r.status)}: ${r.reason} (${r.steps} steps, ${r.toolCalls} tool calls, ${r.denied} denied, ${r.usage.inputTokens + r.usage.outputTokens} tokens)`];
  }
}
