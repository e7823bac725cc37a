/**
 * `run`'s first question: is a daemon running to take the task? It is unless
 * --embedded says otherwise; flags the daemon's API cannot carry (a recording,
 * step and time limits) keep the run embedded, with a note saying so.
 */
import type { Config } from "../config/schema.js";
import { hasCode } from "../errors.js";
import type { AgentFlags } from "./agent-setup.js";
import { approvalTerminal } from "./agent-setup.js";
import { requireDaemon, runningDaemon } from "./daemon-link.js";
import { EXIT, printError } from "./output.js";

/** `run`'s flags about the daemon. */
export interface DaemonFlags {
  embedded?: boolean;
  socket?: string;
}

/** Run the task on a running daemon when there is one; false means "run embedded". Sets process.exitCode. */
export async function runWithDaemon(task: string, flags: AgentFlags & DaemonFlags, config: Config): Promise<boolean> {
  if (flags.embedded) return false;
  // An explicit --socket means "that daemon": not finding it is an error, not a reason to run here.
  const client = flags.socket ? await requireDaemon(config, flags.socket, "Tasks sent with --socket") : await runningDaemon(config);
  if (!client) return false;
  const local = [flags.transcript !== undefined && "--transcript", flags.maxSteps !== undefined && "--max-steps", flags.timeout !== undefined && "--timeout"].filter(Boolean);
  if (local.length > 0) {
    process.stderr.write(`luminaguard: running embedded: the daemon takes only --provider and --model, not ${local.join(", ")} (drop them to run on the daemon, which uses its own config)\n`);
    return false;
  }
  const { runOnDaemon } = await import("./run-daemon.js");
  try {
    process.exitCode = await runOnDaemon({ client, config, task, provider: flags.provider, model: flags.model, json: !!flags.json, terminal: approvalTerminal() });
  } catch (err) {
    // As embedded: no provider set up on the daemon's side is a setup problem (exit 2).
    if (!hasCode(err, "E_AGENT_NO_PROVIDER")) throw err;
    printError(err);
    process.exitCode = EXIT.usage;
  } finally {
    process.stdin.pause();
  }
  return true;
}
