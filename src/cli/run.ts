/** `luminaguard run "task"`: one agent task, its tool calls through the hub, shown as it happens. */
import { Command } from "commander";
import { openHub } from "../mcp/open-hub.js";
import { chooseApprover } from "../approval/choose.js";
import { runTask } from "../agent/loop.js";
import { limitsFromConfig } from "../agent/limits.js";
import { providerSecrets } from "../agent/providers/choose.js";
import { TranscriptWriter, newTaskId, tasksDir } from "../agent/transcript.js";
import { AgentDisplay } from "./agent-display.js";
import { agentConfig, agentOptions, providerOrUsage, approvalTerminal, reportServers, type AgentFlags } from "./agent-setup.js";
import { EXIT } from "./output.js";
import { runWithDaemon, type DaemonFlags } from "./run-choice.js";

/** Exit status of a cancelled task (the shell's 128 + SIGINT). */
export const EXIT_CANCELLED = 130;

/** The `run` command. */
export function runCommand(): Command {
  const cmd = new Command("run")
    .description("Run an AI agent on a task: every tool call it makes runs in a sandbox and red calls wait for approval.")
    .argument("<task>", "what the agent should do, in words");
  agentOptions(cmd)
    .option("--embedded", "run here even when a daemon is running (default: a running daemon runs the task)")
    .option("--socket <path>", "the daemon's Unix socket (default daemon.socket, else <runtime dir>/daemon.sock)")
    .addHelpText(
      "after",
      `
Providers: OPENAI_API_KEY (+ OPENAI_BASE_URL), ANTHROPIC_API_KEY, OLLAMA_HOST, or
--provider replay --transcript FILE to play a recording (try --transcript sample:fs-edit).

With a daemon running (\`luminaguard daemon\`), the task runs there and is followed here:
red calls are asked on this terminal, or approved with \`luminaguard approvals\` / the
dashboard; Ctrl-C cancels it on the daemon. --embedded runs it in this process instead.

Exit status: 0 done, 1 ended otherwise (error, limits), 2 bad usage or no provider, 130 cancelled (Ctrl-C).

Examples:
  luminaguard run "Fix the typo in README.md"
  luminaguard run --provider replay --transcript sample:fs-edit "Fix the typo in README.md"`,
    )
    .action(async (task: string, flags: AgentFlags & DaemonFlags) => {
      const config = agentConfig(flags);
      if (await runWithDaemon(task, flags, config)) return;
      const provider = await providerOrUsage(config);
      if (!provider) return;
      const id = newTaskId();
      const terminal = approvalTerminal();
      const opened = openHub(config, { approver: chooseApprover(config.approval, { terminal }), session: id });
      const display = new AgentDisplay(process.stdout, !!flags.json);
      const stop = new AbortController();
      const onSigint = (): void => {
        if (stop.signal.aborted) process.exit(EXIT_CANCELLED);
        display.endLine();
        process.stderr.write("luminaguard: cancelling the task and destroying its sandboxes (Ctrl-C again to quit at once)\n");
        stop.abort("cancelled by Ctrl-C");
      };
      process.on("SIGINT", onSigint);
      let transcript: TranscriptWriter | undefined;
      try {
        await opened.hub.start();
        reportServers(opened.hub.status());
        transcript = TranscriptWriter.create(tasksDir(config.audit.path), { id, secrets: providerSecrets(), redact: config.audit.redact });
        const result = await runTask({
          task,
          hub: opened.hub,
          provider,
          limits: limitsFromConfig(config.agent),
          signal: stop.signal,
          onEvent: display.onEvent,
          transcript,
          system: config.agent.systemPrompt,
          maxOutputTokens: config.agent.maxOutputTokens,
        });
        display.result(result, provider.name === "replay");
        process.exitCode = result.status === "done" ? EXIT.ok : result.status === "cancelled" ? EXIT_CANCELLED : EXIT.failure;
      } finally {
        transcript?.close();
        await opened.close();
        process.off("SIGINT", onSigint);
        if (terminal) process.stdin.pause();
      }
    });
  return cmd;
}
