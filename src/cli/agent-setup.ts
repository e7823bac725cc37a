/**
 * What `run` and `chat` share: the config with their flags laid over
 * `agent`, the provider, the hub (its servers, approver, audit session), the
 * terminal to ask on, and Ctrl-C wiring. Parsing and wiring only; the agent
 * itself lives in src/agent.
 */
import { Option, type Command } from "commander";
import { parseConfig, readConfigFile } from "../config/load.js";
import { hasCode } from "../errors.js";
import { EXIT, printError } from "./output.js";
import type { Config } from "../config/schema.js";
import { parseDuration } from "../config/duration.js";
import { UsageError } from "../errors.js";
import { PROVIDER_NAMES, type ProviderChoice } from "../agent/config.js";
import { chooseProvider } from "../agent/providers/choose.js";
import type { Provider } from "../agent/types.js";
import type { ServerStatus } from "../mcp/connection.js";

/** Flags both commands take. */
export interface AgentFlags {
  provider?: ProviderChoice;
  model?: string;
  transcript?: string;
  maxSteps?: string;
  timeout?: string;
  json?: boolean;
  config?: string;
}

/** Add the shared flags to a command. */
export function agentOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--provider <name>", "model provider (default agent.provider, else detected from the environment)").choices([...PROVIDER_NAMES]))
    .option("--model <name>", "model name (default agent.model, else the provider's default)")
    .option("--transcript <file>", "with --provider replay: the recording to play (a JSON list of turns, a task transcript, or sample:fs-edit)")
    .option("--max-steps <n>", "model turns at most (default agent.maxSteps, 20)")
    .option("--timeout <duration>", "time limit per task, like 90s or 5m (default agent.timeoutSeconds, 600)")
    .option("--json", "print events as JSON Lines instead of text")
    .option("--config <file>", "config file (default ~/.config/luminaguard/config.json)");
}

/** The config with the flags laid over its `agent` section, validated once. */
export function agentConfig(flags: AgentFlags): Config {
  const raw = readConfigFile(flags.config);
  const agent: Record<string, unknown> = { ...((raw.agent as Record<string, unknown> | undefined) ?? {}) };
  if (flags.provider) agent.provider = flags.provider;
  if (flags.model) agent.model = flags.model;
  if (flags.transcript) {
    if (flags.provider && flags.provider !== "replay") throw new UsageError(`--transcript plays a recording and goes with --provider replay, not --provider ${flags.provider}.`);
    agent.provider = "replay";
    agent.replay = flags.transcript;
  }
  if (flags.maxSteps !== undefined) {
    if (!/^\d+$/.test(flags.maxSteps) || Number(flags.maxSteps) < 1) throw new UsageError(`--max-steps takes a whole number of at least 1, not '${flags.maxSteps}'.`);
    agent.maxSteps = Number(flags.maxSteps);
  }
  if (flags.timeout !== undefined) agent.timeoutSeconds = Math.max(1, Math.ceil(parseDuration(flags.timeout, "--timeout") / 1000));
  return parseConfig({ ...raw, agent }, `config file ${flags.config ?? "(default)"}`);
}

/** The provider from the config (already carrying the flags). */
export function agentProvider(config: Config): Promise<Provider> {
  return chooseProvider({ config: config.agent });
}

/**
 * The provider, or undefined after printing why there is none: no provider is a
 * setup problem, like a bad flag, so the command exits 2 with the variables to set.
 */
export async function providerOrUsage(config: Config): Promise<Provider | undefined> {
  try {
    return await agentProvider(config);
  } catch (err) {
    if (!hasCode(err, "E_AGENT_NO_PROVIDER")) throw err;
    printError(err);
    process.exitCode = EXIT.usage;
    return undefined;
  }
}

/** The terminal to ask approvals on: stdin and stderr when both are terminals. */
export function approvalTerminal(input: NodeJS.ReadableStream = process.stdin): { input: NodeJS.ReadableStream; output: NodeJS.WritableStream; color: boolean } | undefined {
  return process.stdin.isTTY && process.stderr.isTTY ? { input, output: process.stderr, color: !process.env.NO_COLOR } : undefined;
}

/** One line per server that did not start, so a missing tool is explained. */
export function reportServers(servers: ServerStatus[], out: NodeJS.WritableStream = process.stderr): void {
  if (servers.length === 0) out.write("luminaguard: no MCP servers are configured (mcp.servers); the agent has no tools.\n");
  for (const s of servers) if (s.state !== "ready") out.write(`luminaguard: server ${s.name}: ${s.state}${s.lastError ? ` - ${s.lastError}` : ""}\n`);
}
