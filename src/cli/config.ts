/** `luminaguard config`: show the effective config (secrets hidden), validate a file, write a starter file. */
import { Command, Option } from "commander";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { defaultConfigPath, readConfigFile } from "../config/load.js";
import { redactConfig } from "../config/redact.js";
import { STARTER_YAML, starterJson } from "../config/starter.js";
import { validateConfig } from "../config/validate.js";
import { UsageError } from "../errors.js";
import { EXIT } from "./output.js";

/** The `config` command and its subcommands. */
export function configCommand(): Command {
  const cmd = new Command("config").description("Show, check and create the LuminaGuard config file (JSON or YAML).");

  cmd
    .command("show")
    .description("Print the effective config: the file, LUMINAGUARD_<SECTION>__<KEY> overrides and defaults, with secrets redacted.")
    .option("--json", "print JSON (default: YAML)")
    .addOption(new Option("--config <file>", "config file (default ~/.config/luminaguard/config.json)"))
    .action(async (flags: { json?: boolean; config?: string }) => {
      const checked = validateConfig(readConfigFile(flags.config));
      if (!checked.ok) throw invalid(flags.config ?? defaultConfigPath(), checked.issues);
      const shown = redactConfig(checked.config);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
        return;
      }
      // The bundle may hand the CommonJS build over as a default export.
      const mod = (await import("yaml")) as typeof import("yaml") & { default?: typeof import("yaml") };
      const stringify = mod.stringify ?? mod.default!.stringify;
      process.stdout.write(`# effective config from ${flags.config ?? defaultConfigPath()} (sizes in bytes, secrets redacted)\n${stringify(shown)}`);
    });

  cmd
    .command("validate")
    .description("Check a config file; prints every problem with where it is. Exit 0 when valid, 2 otherwise.")
    .argument("[file]", "config file (default: the default config path)")
    .action((file: string | undefined) => {
      const path = file ?? defaultConfigPath();
      if (file === undefined && !existsSync(path)) {
        process.stdout.write(`No config file at ${path}; the defaults apply (they are valid).\n`);
        return;
      }
      const checked = validateConfig(readConfigFile(path));
      if (checked.ok) {
        process.stdout.write(`${path}: valid\n`);
        return;
      }
      process.stderr.write(`${path}: ${checked.issues.length} problem${checked.issues.length === 1 ? "" : "s"}\n`);
      for (const issue of checked.issues) process.stderr.write(`  - ${issue}\n`);
      process.exitCode = EXIT.usage;
    });

  cmd
    .command("init")
    .description("Write a starter config with every default to the default path (refuses to overwrite without --force).")
    .option("--yaml", "write commented YAML (config.yaml) instead of JSON (config.json)")
    .option("--force", "overwrite an existing file")
    .option("--path <file>", "write here instead of the default path")
    .action((flags: { yaml?: boolean; force?: boolean; path?: string }) => {
      const path = flags.path ?? process.env.LUMINAGUARD_CONFIG ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), ".config"), "luminaguard", flags.yaml ? "config.yaml" : "config.json");
      if (existsSync(path) && !flags.force) throw new UsageError(`${path} already exists; pass --force to overwrite it (or --path to write elsewhere).`);
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      // 0600: a config grows tokens and webhook secrets.
      writeFileSync(path, flags.yaml ? STARTER_YAML : starterJson(), { mode: 0o600 });
      process.stdout.write(`Wrote ${path}. Check it with \`luminaguard config validate ${path}\`.\n`);
    });
  return cmd;
}

function invalid(path: string, issues: string[]): UsageError {
  return new UsageError(`The config ${path} is invalid:\n${issues.map((i) => `  - ${i}`).join("\n")}\nFix it, then check with \`luminaguard config validate\`.`);
}
