#!/usr/bin/env node
/** The `luminaguard` command: wires the commands together and turns errors into exit codes. */
import { Command, CommanderError } from "commander";
import { execCommand } from "./exec.js";
import { doctorCommand } from "./doctor.js";
import { demoCommand } from "./demo.js";
import { firewallCommand } from "./firewall.js";
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

/** Build the program (exported for tests). */
export function buildProgram(): Command {
  const program = new Command("luminaguard")
    .description("Run AI agents' tool calls in disposable, isolated sandboxes.")
    .version("0.1.0")
    .showSuggestionAfterError()
    // `exec` passes everything after its own flags to the command untouched.
    .enablePositionalOptions();
  program.addCommand(execCommand());
  program.addCommand(doctorCommand());
  program.addCommand(firewallCommand());
  program.addCommand(demoCommand());
  return conventions(program);
}

async function main(): Promise<void> {
  const program = buildProgram();
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
