/**
 * Red signs in a call's arguments: things that make a call dangerous whatever
 * the tool is called. A path outside the workspace, a recipient (the call talks
 * to someone), an amount of money, or an HTTP method that changes things.
 *
 * Paths are looked for at any depth (a `files: [{path}]` list is as real as a
 * top-level `path`); recipients and amounts only at the top level, because a
 * nested `to` is far more often a date range in a search filter than a person.
 */
import { posix } from "node:path";
import { fileURLToPath } from "node:url";
import type { RiskLevel } from "./types.js";
import { splitWords } from "./words.js";

/** One red sign found in the arguments. */
export interface ArgSign {
  kind: "path" | "recipient" | "money" | "method";
  risk: RiskLevel;
  /** "path /etc/passwd is outside the workspace". */
  reason: string;
}

const PATH_WORDS = new Set([
  "path", "paths", "file", "files", "filename", "filenames", "filepath", "dir", "dirs", "directory", "directories",
  "folder", "folders", "source", "sources", "src", "destination", "dest", "target", "cwd", "root",
]);
/** Words that make a key about a file's content or attributes, not its location ("file_content", "file_type"). */
const NOT_PATH_WORDS = new Set(["content", "contents", "text", "data", "body", "type", "size", "mode", "encoding", "format", "count"]);
const RECIPIENT_KEYS = new Set([
  "to", "recipient", "recipients", "email", "emails", "emailaddress", "cc", "bcc", "channel", "channelid", "phone",
  "phonenumber", "chatid",
]);
const AMOUNT_KEYS = new Set(["amount", "price", "sum", "cost"]);
const CHANGING_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const MAX_DEPTH = 6;

/** "file_path" → "filepath", "phoneNumber" → "phonenumber": one spelling per key. */
const squash = (key: string): string => key.toLowerCase().replace(/[^a-z0-9]/g, "");

/** True when an argument key names a filesystem path ("path", "sourcePath", "target_dir", "paths"). */
export function isPathKey(key: string): boolean {
  const words = splitWords(key);
  if (words.some((w) => NOT_PATH_WORDS.has(w))) return false;
  return words.some((w) => PATH_WORDS.has(w)) || PATH_WORDS.has(squash(key));
}

/**
 * Where a path argument really points, as an absolute normalised posix path, or
 * undefined when the value is not a local path (a URL). Relative paths are taken
 * from the first workspace root, the directory the tool runs in.
 */
export function resolveArgPath(value: string, workspaceRoots: readonly string[]): string | undefined {
  let raw = value.trim();
  if (raw.startsWith("file://")) {
    try {
      raw = fileURLToPath(raw);
    } catch {
      return undefined;
    }
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) return undefined;
  if (raw === "") return undefined;
  // A home directory is never inside the workspace, whoever's home it is.
  if (raw === "~" || raw.startsWith("~/")) return posix.join("/root", raw.slice(1));
  return posix.resolve(workspaceRoots[0] ?? "/workspace", raw);
}

/** True when `abs` is one of the roots or below one. */
export function isInsideWorkspace(abs: string, workspaceRoots: readonly string[]): boolean {
  return workspaceRoots.some((root) => {
    const r = posix.resolve(root);
    return abs === r || abs.startsWith(r.endsWith("/") ? r : `${r}/`);
  });
}

/** Every red sign in `args`, riskiest first. */
export function findArgSigns(args: Record<string, unknown>, workspaceRoots: readonly string[]): ArgSign[] {
  const signs: ArgSign[] = [];
  walkPaths(args, workspaceRoots, signs, 0);
  for (const [key, value] of Object.entries(args)) {
    const k = squash(key);
    if (RECIPIENT_KEYS.has(k) && present(value)) {
      signs.push({ kind: "recipient", risk: "high", reason: `argument '${key}' names a recipient (${preview(value)}): the call sends something to someone` });
    }
    if (AMOUNT_KEYS.has(k) && present(value)) {
      signs.push({ kind: "money", risk: "critical", reason: `argument '${key}' is an amount of money (${preview(value)})` });
    }
    if (k === "value" && present(value) && "currency" in args) {
      signs.push({ kind: "money", risk: "critical", reason: `arguments 'value' and 'currency' are an amount of money (${preview(value)} ${preview(args.currency)})` });
    }
    if (k === "method" && typeof value === "string" && CHANGING_METHODS.has(value.trim().toUpperCase())) {
      signs.push({ kind: "method", risk: "medium", reason: `HTTP method ${value.trim().toUpperCase()} changes things on the server` });
    }
  }
  const order: Record<RiskLevel, number> = { critical: 0, high: 1, medium: 2, low: 3 };
  return signs.sort((a, b) => order[a.risk] - order[b.risk]);
}

function walkPaths(value: unknown, roots: readonly string[], signs: ArgSign[], depth: number, pathKey = false): void {
  if (depth > MAX_DEPTH) return;
  if (typeof value === "string") {
    if (!pathKey) return;
    const abs = resolveArgPath(value, roots);
    if (abs !== undefined && !isInsideWorkspace(abs, roots)) {
      const shown = abs === value ? value : `${value} (${abs})`;
      signs.push({ kind: "path", risk: "high", reason: `path ${shown} is outside the workspace (${roots.join(", ")})` });
    }
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) walkPaths(item, roots, signs, depth + 1, pathKey);
    return;
  }
  if (value !== null && typeof value === "object") {
    for (const [key, inner] of Object.entries(value)) walkPaths(inner, roots, signs, depth + 1, isPathKey(key));
  }
}

function present(value: unknown): boolean {
  if (value === undefined || value === null || value === "") return false;
  return !(Array.isArray(value) && value.length === 0);
}

function preview(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
