/**
 * The Diff Card builder: what a red call would change, for a person to decide on.
 * The kind of effect is recognised from the tool's name words and its argument
 * names (the @modelcontextprotocol/server-filesystem tools first, then generic
 * shapes); anything unrecognised shows its arguments. Building a card never
 * throws on what the reader or the arguments do: a card that says "unknown" is
 * better than no card, because no card means the call cannot be decided. The
 * one exception is arguments the call hash refuses (NaN, cycles, ...): such a
 * call cannot be bound to an approval, so it throws E_APPROVAL_UNHASHABLE.
 */
import { findArg, stringArg } from "./args.js";
import { callHash } from "./call-hash.js";
import {
  commandBody,
  genericBody,
  looksLikeCommand,
  looksLikeMessage,
  looksLikeMoney,
  messageBody,
  moneyBody,
} from "./card-actions.js";
import { fileDeleteBody, fileEditBody, fileMoveBody, fileWriteBody, type BodyAndSummary } from "./card-files.js";
import { parseEdits } from "./edits.js";
import type { ContentReader } from "./reader.js";
import type { Classification, DiffCard, ToolCall } from "./types.js";
import { qualifiedName } from "./user-rules.js";
import { splitWords } from "./words.js";

/** How much a card may hold. */
export interface DiffCardOptions {
  /** Lines of diff kept on the card (default 400); the counts still cover the whole diff. */
  maxDiffLines?: number | undefined;
  /** Bytes of diff, message body or arguments kept on the card (default 256 KiB). */
  maxBodyBytes?: number | undefined;
  /** Clock for createdAt (tests). */
  now?: (() => Date) | undefined;
}

export const DEFAULT_MAX_DIFF_LINES = 400;
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024;

const PATH = ["path", "filepath", "file", "filename", "target", "targetpath"];
const MOVE_FROM = ["source", "src", "from", "oldpath", "sourcepath"];
const MOVE_TO = ["destination", "dest", "to", "newpath", "destinationpath", "target", "targetpath"];
const CONTENT = ["content", "contents", "text", "data", "body"];

const has = (words: Set<string>, ...any: string[]) => any.some((w) => words.has(w));

/** Build the Diff Card for one call. */
export async function buildDiffCard(call: ToolCall, classification: Classification, reader: ContentReader, opts: DiffCardOptions = {}): Promise<DiffCard> {
  const limits = { maxLines: opts.maxDiffLines ?? DEFAULT_MAX_DIFF_LINES, maxBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES };
  const name = qualifiedName(call.server, call.tool);
  let made: BodyAndSummary;
  try {
    made = await bodyFor(call, reader, limits);
  } catch (err) {
    // A bug or a strange argument shape must not make a red call undecidable.
    const reason = err instanceof Error ? err.message : String(err);
    const generic = genericBody(call.args, limits.maxBytes, "would run");
    made = { body: generic.body, summary: `${generic.summary} (effect preview failed: ${reason})` };
  }
  return {
    hash: callHash(call.server, call.tool, call.args),
    server: call.server,
    tool: call.tool,
    classification,
    summary: `${name} ${made.summary}`,
    body: made.body,
    createdAt: (opts.now?.() ?? new Date()).toISOString(),
  };
}

async function bodyFor(call: ToolCall, reader: ContentReader, limits: { maxLines: number; maxBytes: number }): Promise<BodyAndSummary> {
  const args = call.args;
  const words = new Set(splitWords(call.tool));
  const path = stringArg(args, PATH);

  // Money first: a "send" with an amount is a payment, not a message.
  if (looksLikeMoney(args)) return moneyBody(args);

  if (has(words, "move", "mv", "rename")) {
    const from = stringArg(args, MOVE_FROM) ?? path;
    const to = stringArg(args, MOVE_TO);
    if (from !== undefined && to !== undefined) return fileMoveBody(reader, from, to);
  }

  const edits = parseEdits(findArg(args, ["edits"])?.value);
  if (path !== undefined && edits !== undefined) {
    return fileEditBody(reader, path, edits, findArg(args, ["dryrun"])?.value === true, limits);
  }

  const content = findArg(args, CONTENT)?.value;
  if (path !== undefined && typeof content === "string" && has(words, "write", "create", "save", "overwrite", "put", "append", "update", "edit", "replace", "upload", "touch")) {
    return fileWriteBody(reader, path, content, limits, words.has("append"));
  }

  if (path !== undefined && has(words, "directory", "dir", "folder", "mkdir") && has(words, "create", "make", "mkdir", "new", "add")) {
    return directoryCreate(reader, path, args, limits.maxBytes);
  }

  if (path !== undefined && has(words, "delete", "remove", "rm", "rmdir", "unlink", "erase", "destroy", "trash")) {
    return fileDeleteBody(reader, path);
  }

  if (has(words, "exec", "execute", "run", "shell", "bash", "sh", "command", "cmd", "spawn", "terminal", "script") && looksLikeCommand(args)) {
    return commandBody(args);
  }

  if (looksLikeMessage(args) && (has(words, "send", "post", "reply", "email", "mail", "message", "notify", "publish", "submit", "request", "fetch", "http", "webhook", "call", "comment", "chat", "sms") || stringArg(args, ["method"]) !== undefined)) {
    return messageBody(args, limits.maxBytes);
  }

  return genericBody(args, limits.maxBytes, "would run");
}

/** create_directory has no card kind of its own: the arguments, and a headline that says what happens. */
async function directoryCreate(reader: ContentReader, path: string, args: Record<string, unknown>, maxBytes: number): Promise<BodyAndSummary> {
  const { body } = genericBody(args, maxBytes, "");
  let state: string;
  try {
    const st = await reader.stat(path);
    state = st === null ? "" : st.type === "dir" ? " (it already exists: nothing changes)" : ` (a ${st.type} is already there: the call will fail)`;
  } catch (err) {
    state = `; current state unavailable: ${err instanceof Error ? err.message : String(err)}`;
  }
  return { body, summary: `would create directory ${path} and any missing parents${state}` };
}
