#!/usr/bin/env node
/** The `luminaguard` command: wires the commands together and turns errors into exit codes. */
import { Command, CommanderError } from "commander";
import { EXIT, exitCodeFor, printError } from "./output.js";

const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
  process.stderr.write(`luminaguard: needs Node.js 22 or newer, this is ${process.version}. Run \`make build\` (it installs Node 24 into .tools/) and use ./bin/luminaguard.\n`);
  process.exit(EXIT.usage);
}

/** Apply our error conventions to a command and all its subcommands. */
function conventions(cmd: Command): Command {
  cmd.exitOverride().configureOutput({
    // commander's own messages ("error: unknown option") become one clear line.
    outputError: (str, write) => write(`luminaguard: ${str.replace(/^error: /, "").trim()}\n  (see: luminaguard ${cmd.name() === "luminaguard" ? "" : `${cmd.name()} `}--help)\n`),
  });
  for (const sub of cmd.commands) conventions(sub);
  return cmd;
}

/**
 * Commands load on demand: `luminaguard exec` must not pay for loading doctor's
 * probes or the firewall (start-up is measured in bench/spawn). Help and
 * unknown commands load them all, to list and suggest them.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  exec: () => import("./exec.js").then((m) => m.execCommand()),
  doctor: () => import("./doctor.js").then((m) => m.doctorCommand()),
  firewall: () => import("./firewall.js").then((m) => m.firewallCommand()),
  image: () => import("./image.js").then((m) => m.imageCommand()),
  demo: () => import("./demo.js").then((m) => m.demoCommand()),
  mcp: () => import("./mcp.js").then((m) => m.mcpCommand()),
  audit: () => import("./audit.js").then((m) => m.auditCommand()),
  run: () => import("./run.js").then((m) => m.runCommand()),
  chat: () => import("./chat.js").then((m) => m.chatCommand()),
  task: () => import("./task.js").then((m) => m.taskCommand()),
  approvals: () => import("./approvals.js").then((m) => m.approvalsCommand()),
  daemon: () => import("./daemon.js").then((m) => m.daemonCommand()),
  config: () => import("./config.js").then((m) => m.configCommand()),
};

/** Build the program with the command named in `argv`, or all of them (exported for tests). */
export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command("luminaguard")
    .description("Run AI agents' tool calls in disposable, isolated sandboxes.")
    .version("0.1.0")
    .showSuggestionAfterError()
    // `exec` passes everything after its own flags to the command untouched.
    .enablePositionalOptions();
  const wanted = argv[2];
  const names = wanted !== undefined && wanted in COMMANDS ? [wanted] : Object.keys(COMMANDS);
  for (const cmd of await Promise.all(names.map((n) => COMMANDS[n]!()))) program.addCommand(cmd);
  return conventions(program);
}

// `luminaguard mcp list | head`: a reader that stops early is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}

async function main(): Promise<void> {
  const program = await buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version requests are not errors.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT.usage;
      return;
    }
    printError(err);
    process.exitCode = exitCodeFor(err);
  }
}

await main();
