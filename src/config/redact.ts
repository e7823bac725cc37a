/**
 * The effective config with its secrets hidden, for `config show` and logs:
 * the daemon's token, webhook secrets, every HTTP header value of MCP servers,
 * credentials in URLs, and env values of stdio servers whose names look secret.
 */

export const REDACTED = "[REDACTED]";

const SECRET_NAME = /(pass(word)?|secret|token|api[-_]?key|auth|credential|private[-_]?key|cookie|session)/i;

/** A deep copy of `config` (validated or raw) with secrets replaced by [REDACTED]. */
export function redactConfig<T>(config: T): T {
  return walk(config, []) as T;
}

function walk(value: unknown, path: string[]): unknown {
  if (Array.isArray(value)) return value.map((v, i) => walk(v, [...path, String(i)]));
  if (typeof value === "string") return secretAt(path) ? REDACTED : redactUrl(value);
  if (typeof value !== "object" || value === null) return secretAt(path) && value !== undefined ? REDACTED : value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, [...path, k])]));
}

/** Whether the value at `path` is a secret. */
function secretAt(path: string[]): boolean {
  const key = path.at(-1) ?? "";
  const parent = path.at(-2) ?? "";
  // Header values carry credentials in any header ("authorization", "x-api-key", custom ones alike).
  if (parent === "headers") return true;
  if (path[0] === "daemon" && path[1] === "tcp" && key === "token") return true;
  if (path[0] === "daemon" && path[1] === "webhooks" && key === "secret") return true;
  if (parent === "env" && SECRET_NAME.test(key)) return true;
  return SECRET_NAME.test(key);
}

/** `https://user:pass@host/...` → `https://[REDACTED]@host/...`; query values named like secrets too. */
function redactUrl(text: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return text;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  let changed = false;
  if (url.username || url.password) {
    url.username = REDACTED;
    url.password = "";
    changed = true;
  }
  for (const key of [...url.searchParams.keys()]) {
    if (SECRET_NAME.test(key)) {
      url.searchParams.set(key, REDACTED);
      changed = true;
    }
  }
  return changed ? url.toString() : text;
}
