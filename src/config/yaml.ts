/**
 * YAML config files, parsed with the `yaml` package. Loaded through
 * createRequire rather than imported: every `luminaguard exec` reads the config,
 * and only YAML users should pay for loading a YAML parser (start-up is benchmarked).
 */
import { createRequire } from "node:module";

interface YamlModule {
  parse(text: string, options?: { prettyErrors?: boolean; uniqueKeys?: boolean; maxAliasCount?: number }): unknown;
}

let yaml: YamlModule | undefined;

/** True for paths that name a YAML file. */
export function isYamlPath(path: string): boolean {
  return /\.ya?ml$/i.test(path);
}

/** Parse YAML text; throws the parser's error (with line and column) on bad input. */
export function parseYaml(text: string): unknown {
  // A variable, not `require(...)`: the CLI bundler must leave the parser out of the start-up bundle.
  const load = createRequire(import.meta.url);
  yaml ??= load("yaml") as YamlModule;
  // Duplicate keys are an error (JSON.parse silently takes the last; YAML users deserve better); alias bombs are capped.
  return yaml.parse(text, { prettyErrors: true, uniqueKeys: true, maxAliasCount: 100 });
}
