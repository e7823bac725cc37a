/** Reading and validating the config file; the only place config errors are made. */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { configSchema, type Config } from "./schema.js";
import { LuminaError } from "../errors.js";

export class ConfigError extends LuminaError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("E_CONFIG", message, options);
  }
}

/** Default config path: $LUMINAGUARD_CONFIG, else ~/.config/luminaguard/config.json. */
export function defaultConfigPath(): string {
  return process.env.LUMINAGUARD_CONFIG ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), ".config"), "luminaguard", "config.json");
}

/** Validate a parsed config object; issues come back as one readable message. */
export function parseConfig(raw: unknown, source = "config"): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    // One line: CLI users see it as a single error, config authors get every issue with its place.
    const issues = result.error.issues.map((i) => (i.path.length > 0 ? `${i.message} (at ${i.path.join(".")})` : i.message));
    throw new ConfigError(`Invalid ${source}: ${issues.join("; ")}`);
  }
  return result.data;
}

/** Load and validate the config file; a missing file at the default path means all defaults. */
export function loadConfig(path?: string): Config {
  return parseConfig(readConfigFile(path), `config file ${path ?? defaultConfigPath()}`);
}

/**
 * The config file's raw JSON (not validated yet), so callers can lay command-line
 * overrides on top and validate everything once. A missing default file is `{}`.
 */
export function readConfigFile(path?: string): Record<string, unknown> {
  const file = path ?? defaultConfigPath();
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && path === undefined) return {};
    throw new ConfigError(`Cannot read the config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`The config file ${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`The config file ${file} must hold a JSON object.`);
  }
  return raw as Record<string, unknown>;
}
