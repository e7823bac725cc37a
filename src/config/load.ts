/** Reading and validating the config file; the only place config errors are made. */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { configSchema, type Config } from "./schema.js";
import { LuminaError } from "../errors.js";
import { applyEnvOverrides, envOverrides } from "./env.js";
import { isYamlPath, parseYaml } from "./yaml.js";

export class ConfigError extends LuminaError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("E_CONFIG", message, options);
  }
}

/** Default config path: $LUMINAGUARD_CONFIG, else ~/.config/luminaguard/config.json (config.yaml or .yml when only that exists). */
export function defaultConfigPath(): string {
  if (process.env.LUMINAGUARD_CONFIG) return process.env.LUMINAGUARD_CONFIG;
  const dir = join(process.env.XDG_CONFIG_HOME ?? join(homedir(), ".config"), "luminaguard");
  return ["config.json", "config.yaml", "config.yml"].map((n) => join(dir, n)).find((p) => existsSync(p)) ?? join(dir, "config.json");
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
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && path === undefined) return applyEnvOverrides({}, envOverrides(process.env, configSchema));
    throw new ConfigError(`Cannot read the config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = isYamlPath(file) ? (parseYaml(text) ?? {}) : JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`The config file ${file} is not valid ${isYamlPath(file) ? "YAML" : "JSON"}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`The config file ${file} must hold a JSON object.`);
  }
  // LUMINAGUARD_<SECTION>__<KEY> variables win over the file; flags, laid on by callers, win over both.
  return applyEnvOverrides(raw as Record<string, unknown>, envOverrides(process.env, configSchema));
}
