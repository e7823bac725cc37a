/**
 * `luminaguard chat`: an interactive session. Each line is a task that
 * continues the conversation; `/exit` (or Ctrl-D) ends it. Ctrl-C cancels the
 * turn in flight; Ctrl-C with no turn running leaves.
 *
 * One readline owns stdin. While an approval question is open, typed lines go
 * to the terminal approver (through a pipe) instead of becoming tasks; lines
 * typed while the agent works are not kept, so a stray "y" can never answer a
 * later question.
 */
import { Command } from "commander";
import { PassThrough } from "node:stream";
import { createInterface } from "node:readline";
import { openHub } from "../mcp/open-hub.js";
import { chooseApprover } from "../approval/choose.js";
import type { Approver } from "../approval/types.js";
import { runTask } from "../agent/loop.js";
import { limitsFromConfig } from "../agent/limits.js";
import { providerSecrets } from "../agent/providers/choose.js";
import { TranscriptWriter, newTaskId, tasksDir } from "../agent/transcript.js";
import type { AgentMessage } from "../agent/types.js";
import { AgentDisplay } from "./agent-display.js";
import { agentConfig, agentOptions, providerOrUsage, reportServers, type AgentFlags } from "./agent-setup.js";
import { EXIT_CANCELLED } from "./run.js";

/** The `chat` command. */
export function chatCommand(): Command {
  const cmd = new Command("chat").description("Talk with an agent: each line is a task that continues the conversation (/exit to leave).");
  agentOptions(cmd).action(async (flags: AgentFlags) => {
    const config = agentConfig(flags);
    const provider = await providerOrUsage(config);
    if (!provider) return;
    const tty = process.stdin.isTTY === true;
    const answers = new PassThrough();
    let asking = 0;
    const terminal = tty && process.stderr.isTTY ? { input: answers, output: process.stderr, color: !process.env.NO_COLOR } : undefined;
    const inner = chooseApprover(config.approval, { terminal });
    // Knowing when a question is open tells typed lines where to go.
    const approver: Approver = {
      name: inner.name,
      async decide(card, opts) {
        asking++;
        try {
          return await inner.decide(card, opts);
        } finally {
          asking--;
        }
      },
    };
    const session = `chat-${newTaskId()}`;
    const opened = openHub(config, { approver, session });
    const display = new AgentDisplay(process.stdout, !!flags.json);
    const replay = provider.name === "replay";
    let history: AgentMessage[] = [];
    let turn: AbortController | undefined;
    const queued: string[] = [];
    let inputEnded = false;
    let leaving = false;

    try {
      await opened.hub.start();
      reportServers(opened.hub.status());
      if (!flags.json) process.stdout.write(`${replay ? "replay: " : ""}chat with ${provider.name} ${provider.model} · ${opened.hub.tools().length} tools · /exit to leave\n`);
      const rl = createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty, prompt: "you> " });
      let pumping = false;
      let done: () => void = () => undefined;
      const finished = new Promise<void>((resolve) => (done = resolve));
      const interrupt = (): void => {
        if (turn && !turn.signal.aborted) {
          display.endLine();
          process.stderr.write("luminaguard: cancelling this turn (Ctrl-C again to leave)\n");
          turn.abort("cancelled by Ctrl-C");
          return;
        }
        leaving = true;
        process.exitCode = EXIT_CANCELLED;
        rl.close();
        if (!pumping) done();
      };
      const next = async (line: string): Promise<void> => {
        const text = line.trim();
        if (text === "/exit" || text === "/quit") {
          leaving = true;
          rl.close();
          return;
        }
        if (text === "") return;
        turn = new AbortController();
        const transcript = TranscriptWriter.create(tasksDir(config.audit.path), { id: newTaskId(), secrets: providerSecrets(), redact: config.audit.redact });
        try {
          const result = await runTask({
            task: text,
            hub: opened.hub,
            provider,
            limits: limitsFromConfig(config.agent),
            signal: turn.signal,
            approver,
            onEvent: display.onEvent,
            transcript,
            history,
            system: config.agent.systemPrompt,
            maxOutputTokens: config.agent.maxOutputTokens,
          });
          history = result.messages;
          display.result(result, replay);
        } finally {
          transcript.close();
          turn = undefined;
        }
      };
      // One pump at a time runs queued lines in order; a line never starts a second turn beside the first.
      const pump = async (): Promise<void> => {
        if (pumping) return;
        pumping = true;
        try {
          while (queued.length > 0 && !leaving) await next(queued.shift()!);
        } finally {
          pumping = false;
        }
        if (leaving || inputEnded) done();
        else if (tty) rl.prompt();
      };
      rl.on("line", (line) => {
        if (asking > 0) {
          answers.write(`${line}\n`);
          return;
        }
        if (turn && tty) {
          process.stderr.write("luminaguard: the agent is still working; type when the prompt shows (Ctrl-C cancels this turn)\n");
          return;
        }
        // Piped input is a script: its lines wait their turn.
        queued.push(line);
        void pump();
      });
      rl.on("SIGINT", interrupt);
      process.on("SIGINT", interrupt);
      rl.on("close", () => {
        inputEnded = true;
        answers.end();
        if (!pumping) done();
      });
      if (tty) rl.prompt();
      try {
        await finished;
      } finally {
        process.off("SIGINT", interrupt);
      }
    } finally {
      await opened.close();
      process.stdin.pause();
    }
  });
  return cmd;
}
