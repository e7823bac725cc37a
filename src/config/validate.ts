/** Checking a raw config against the schema, every issue as its own readable line (for `config validate`). */
import { configSchema, type Config } from "./schema.js";

/** `{ok, config}` or `{ok: false, issues}` with each issue and where it is. */
export function validateConfig(raw: unknown): { ok: true; config: Config } | { ok: false; issues: string[] } {
  const result = configSchema.safeParse(raw ?? {});
  if (result.success) return { ok: true, config: result.data };
  return { ok: false, issues: result.error.issues.map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message)) };
}
