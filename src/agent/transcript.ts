/**
 * Task transcripts: one JSON Lines file per task in `<stateDir>/tasks/`
 * (beside the audit log; folder 0700, files 0600): the task, provider and
 * model, every message, tool call and result, usage and the end. Written as
 * it happens (a crash leaves everything up to it). Secrets never reach it:
 * arguments named like secrets are redacted as in the audit log, and any API
 * key value from the environment is replaced wherever it appears.
 */
import { closeSync, chmodSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, fstatSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { stateDir } from "../config/paths.js";
import { DEFAULT_REDACT, REDACTED, keyMatcher, redact, type KeyMatcher } from "../approval/audit/redact.js";
import { AgentError } from "./errors.js";
import type { AgentMessage, ProviderNotice, TaskLimits, TaskStatus, ToolOutcome, Usage } from "./types.js";

/** One line of a transcript. */
export type TranscriptRecord = { t: string } & (
  | { type: "task"; id: string; task: string; provider: string; model: string; limits: TaskLimits; system: string; tools: string[]; history: number; writer?: TranscriptOwner | undefined }
  | { type: "message"; step: number; message: AgentMessage }
  | { type: "tool-call"; step: number; id: string; name: string; args: Record<string, unknown>; verdict: "green" | "red" | null }
  | { type: "tool-result"; step: number; id: string; name: string; ok: boolean; bytes: number; outcome: ToolOutcome | null; summary: string }
  | { type: "notice"; step: number; notice: ProviderNotice }
  | { type: "usage"; step: number; usage: Usage; total: Usage; keyIndex: number | null }
  | { type: "end"; status: TaskStatus; reason: string; steps: number; usage: Usage; denied: number; toolCalls: number; error: { code: string; message: string } | null }
);

/**
 * The process that writes a transcript (stamped by the writer on the task record): lets a
 * later daemon tell a task whose process died (close it as interrupted) from one still running.
 */
export interface TranscriptOwner {
  pid: number;
  /** Start time of that process (clock ticks after boot, /proc/<pid>/stat), so a reused pid is not mistaken for it. */
  startTime: number;
  kind: "daemon" | "cli";
}

let ownKind: TranscriptOwner["kind"] = "cli";

/** Say this process is the daemon: its transcripts then name it, and a dead daemon's tasks read "the daemon that ran it stopped". */
export function setTranscriptOwnerKind(kind: TranscriptOwner["kind"]): void {
  ownKind = kind;
}

function ownOwner(): TranscriptOwner {
  let startTime = 0;
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    startTime = Number(stat.slice(stat.lastIndexOf(")") + 1).trim().split(/\s+/)[22 - 3]) || 0;
  } catch {
    // no /proc: liveness then rests on the pid alone
  }
  return { pid: process.pid, startTime, kind: ownKind };
}

type Unstamped<R> = R extends unknown ? Omit<R, "t"> : never;
export type TranscriptInput = Unstamped<TranscriptRecord>;

/** Where a task's transcript goes: what runTask writes to. */
export interface TranscriptSink {
  readonly id: string;
  /** The file, or null for a sink that keeps nothing on disk. */
  readonly path: string | null;
  write(record: TranscriptInput): void;
}

/** The tasks folder: next to the configured audit log when there is one, else `<stateDir>/tasks`. */
export function tasksDir(auditPath?: string | undefined): string {
  return auditPath ? join(dirname(auditPath), "tasks") : join(stateDir(), "tasks");
}

/** A new task id: sortable by start time, with a random tail (`20260102-030405-a1b2c3`). */
export function newTaskId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$/;

export interface TranscriptWriterOptions {
  id?: string | undefined;
  /** Literal values replaced by [REDACTED] wherever they appear (API keys). */
  secrets?: string[] | undefined;
  /** Extra key-name globs to redact in tool arguments (audit.redact). */
  redact?: string[] | undefined;
}

/** Appends records to `<dir>/<id>.jsonl`, synchronously, so the file is complete up to any crash. */
export class TranscriptWriter implements TranscriptSink {
  readonly id: string;
  readonly path: string;
  private fd: number | undefined;
  private readonly secrets: string[];
  private readonly matches: KeyMatcher;

  private constructor(dir: string, opts: TranscriptWriterOptions) {
    this.id = opts.id ?? newTaskId();
    if (!ID.test(this.id)) throw new AgentError("E_AGENT_TRANSCRIPT", `Task ids are letters, digits, - and _ (got '${this.id}').`);
    this.path = join(dir, `${this.id}.jsonl`);
    // Longest first, so a key that contains another is replaced whole.
    this.secrets = [...new Set(opts.secrets ?? [])].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
    this.matches = keyMatcher([...DEFAULT_REDACT, ...(opts.redact ?? [])]);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700);
      this.fd = openSync(this.path, "wx", 0o600);
    } catch (err) {
      throw new AgentError("E_AGENT_TRANSCRIPT", `Cannot create the task transcript ${this.path}: ${(err as Error).message}. Check that the state folder is writable (LUMINAGUARD_STATE_DIR).`, { cause: err });
    }
  }

  /** Create the transcript file for a new task in `dir` (see tasksDir()). */
  static create(dir: string, opts: TranscriptWriterOptions = {}): TranscriptWriter {
    return new TranscriptWriter(dir, opts);
  }

  write(record: TranscriptInput): void {
    if (this.fd === undefined) return;
    const stamped = record.type === "task" ? { ...record, writer: ownOwner() } : record;
    let line = JSON.stringify({ t: new Date().toISOString(), ...this.redacted(stamped) });
    for (const s of this.secrets) line = line.replaceAll(JSON.stringify(s).slice(1, -1), REDACTED);
    writeSync(this.fd, `${line}\n`);
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }

  private redacted(record: TranscriptInput): TranscriptInput {
    if (record.type === "tool-call") return { ...record, args: redact(record.args, this.matches) as Record<string, unknown> };
    if (record.type === "message" && record.message.role === "assistant" && record.message.toolCalls.length > 0) {
      const m = record.message;
      return { ...record, message: { ...m, toolCalls: m.toolCalls.map((c) => ({ ...c, args: redact(c.args, this.matches) as Record<string, unknown> })) } };
    }
    return record;
  }
}

/** One task as `task list` shows it. */
export interface TaskSummary {
  id: string;
  task: string;
  provider: string;
  model: string;
  startedAt: string;
  /** "running" while the transcript has no end (or its process died before writing one). */
  status: TaskStatus | "running";
  reason: string | null;
  steps: number | null;
  usage: Usage | null;
  path: string;
}

/** Every task in `dir` (default tasksDir()), newest first. */
export function listTasks(dir: string = tasksDir()): TaskSummary[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(".jsonl"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new AgentError("E_AGENT_TRANSCRIPT", `Cannot read the tasks folder ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const out: TaskSummary[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const { first, last } = headAndTail(path);
    const head = parseLine(first);
    if (head?.type !== "task") continue;
    const tail = parseLine(last);
    const end = tail?.type === "end" ? tail : undefined;
    out.push({
      id: head.id,
      task: head.task,
      provider: head.provider,
      model: head.model,
      startedAt: head.t,
      status: end?.status ?? "running",
      reason: end?.reason ?? null,
      steps: end?.steps ?? null,
      usage: end?.usage ?? null,
      path,
    });
  }
  return out.sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : b.id.localeCompare(a.id)));
}

/** Every record of task `id` in `dir` (default tasksDir()); E_AGENT_UNKNOWN_TASK when there is none. */
export function readTranscript(id: string, dir: string = tasksDir()): TranscriptRecord[] {
  if (!ID.test(id)) throw new AgentError("E_AGENT_UNKNOWN_TASK", `'${id}' is not a task id (see \`luminaguard task list\`).`);
  let text: string;
  try {
    text = readFileSync(join(dir, `${id}.jsonl`), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new AgentError("E_AGENT_UNKNOWN_TASK", `No task '${id}' in ${dir} (see \`luminaguard task list\`).`);
    throw new AgentError("E_AGENT_TRANSCRIPT", `Cannot read the transcript of task ${id}: ${(err as Error).message}`, { cause: err });
  }
  // A line cut by a crash mid-write is skipped rather than failing the whole transcript.
  return text.split("\n").map(parseLine).filter((r): r is TranscriptRecord => r !== undefined);
}

/** A transcript whose last record is not its end: still running, or its process died. */
export interface UnfinishedTask {
  id: string;
  path: string;
  writer: TranscriptOwner | undefined;
  /** Counted from the records, for the end record that closes it. */
  steps: number;
  toolCalls: number;
  denied: number;
  usage: Usage;
}

/** Every transcript in `dir` that has a task record and no end record. */
export function unfinishedTasks(dir: string): UnfinishedTask[] {
  const out: UnfinishedTask[] = [];
  for (const t of listTasks(dir)) {
    if (t.status !== "running") continue;
    let records: TranscriptRecord[];
    try {
      records = readTranscript(t.id, dir);
    } catch {
      continue; // removed meanwhile
    }
    const head = records[0];
    if (head?.type !== "task" || records.some((r) => r.type === "end")) continue;
    let steps = 0;
    let toolCalls = 0;
    let denied = 0;
    let usage: Usage = { inputTokens: 0, outputTokens: 0 };
    for (const r of records) {
      if ("step" in r) steps = Math.max(steps, r.step);
      if (r.type === "tool-call") toolCalls++;
      if (r.type === "tool-result" && r.outcome?.decision === "denied") denied++;
      if (r.type === "usage") usage = r.total;
    }
    out.push({ id: t.id, path: t.path, writer: head.writer, steps, toolCalls, denied, usage });
  }
  return out;
}

/** Append an end record to a transcript another process left open (its writer is gone). */
export function appendEnd(path: string, end: Extract<TranscriptInput, { type: "end" }>): void {
  let fd: number;
  try {
    fd = openSync(path, "a+");
  } catch (err) {
    throw new AgentError("E_AGENT_TRANSCRIPT", `Cannot close the transcript ${path}: ${(err as Error).message}. Check that the state folder is writable.`, { cause: err });
  }
  try {
    // A line the dead writer cut off mid-write gets its own newline, so the end record parses.
    const size = fstatSync(fd).size;
    const lastByte = Buffer.alloc(1);
    const needsNewline = size > 0 && readSync(fd, lastByte, 0, 1, size - 1) === 1 && lastByte[0] !== 0x0a;
    writeSync(fd, `${needsNewline ? "\n" : ""}${JSON.stringify({ t: new Date().toISOString(), ...end })}\n`);
  } finally {
    closeSync(fd);
  }
}

function parseLine(line: string | undefined): TranscriptRecord | undefined {
  if (!line?.trim()) return undefined;
  try {
    return JSON.parse(line) as TranscriptRecord;
  } catch {
    return undefined;
  }
}

const CHUNK = 64 * 1024;

/** The first and last lines of a file, reading only its ends unless a line is longer than CHUNK. */
function headAndTail(path: string): { first: string | undefined; last: string | undefined } {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return { first: undefined, last: undefined };
  }
  try {
    const size = fstatSync(fd).size;
    if (size <= 2 * CHUNK) {
      const lines = readFileSync(fd, "utf8").split("\n").filter((l) => l.trim());
      return { first: lines[0], last: lines.at(-1) };
    }
    const read = (pos: number): string => {
      const buf = Buffer.alloc(CHUNK);
      const n = readSync(fd, buf, 0, CHUNK, pos);
      return buf.subarray(0, n).toString("utf8");
    };
    const head = read(0);
    const tailText = read(size - CHUNK).replace(/\n+$/, "");
    const nl = head.indexOf("\n");
    const lastNl = tailText.lastIndexOf("\n");
    if (nl < 0 || lastNl < 0) {
      const lines = readFileSync(path, "utf8").split("\n").filter((l) => l.trim());
      return { first: lines[0], last: lines.at(-1) };
    }
    return { first: head.slice(0, nl), last: tailText.slice(lastNl + 1) };
  } finally {
    closeSync(fd);
  }
}
