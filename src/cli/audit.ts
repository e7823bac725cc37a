/** `luminaguard audit`: read, check and export the tamper-evident audit log of tool calls. */
import { createWriteStream, openSync } from "node:fs";
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { Command, Option } from "commander";
import { loadConfig } from "../config/load.js";
import { parseDuration } from "../config/duration.js";
import { UsageError } from "../errors.js";
import { auditPath } from "../approval/audit/config.js";
import { AuditError } from "../approval/audit/errors.js";
import { AuditStore } from "../approval/audit/store.js";
import { AUDIT_DECISIONS, type AuditDecision, type AuditRow, type VerifyResult } from "../approval/audit/types.js";
import { EXIT, printError } from "./output.js";
import { style } from "./style.js";

interface GlobalFlags {
  db?: string;
  config?: string;
}

interface ListFlags extends GlobalFlags {
  limit: string;
  before?: string;
  server?: string;
  tool?: string;
  decision?: AuditDecision;
  since?: string;
  json?: boolean;
}

const HELP_AFTER = `
The log is a SQLite file (default $LUMINAGUARD_STATE_DIR, $XDG_STATE_HOME/luminaguard or
~/.local/state/luminaguard, file audit.db; config key audit.path). Every row carries the
hash of the row before it, so edits and deletions show up in \`audit verify\`.

Examples:
  luminaguard audit list --server fs --decision denied
  luminaguard audit show 42
  luminaguard audit verify
  luminaguard audit --db ./copy-of-audit.db export --out audit.jsonl`;

/** Which file to read: --db, else `audit.path` from the config file, else the default. */
function dbPath(flags: GlobalFlags): string {
  if (flags.db) return flags.db;
  return loadConfig(flags.config).audit.path ?? auditPath();
}

/** Open the log read-only for the command's lifetime. */
async function withLog<T>(cmd: Command, use: (store: AuditStore) => T | Promise<T>): Promise<T> {
  const store = AuditStore.open(dbPath(cmd.optsWithGlobals<GlobalFlags>()), { readOnly: true });
  try {
    return await use(store);
  } finally {
    store.close();
  }
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag} needs a whole number of at least 1, got ${JSON.stringify(value)}.`);
  return n;
}

/** "2h" means two hours ago; anything else must be a date Date can read. */
function parseSince(value: string): Date {
  if (/^\s*\d+(\.\d+)?\s*(ms|s|m|h)\s*$/.test(value)) return new Date(Date.now() - parseDuration(value, "--since"));
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new UsageError(`--since needs a date like 2025-06-01T12:00:00Z or a duration like 2h, got ${JSON.stringify(value)}.`);
  return d;
}

const latency = (ms: number): string => (ms < 10 ? `${ms.toFixed(1)}ms` : `${Math.round(ms)}ms`);
const clip = (s: string, n: number): string => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);

/** The `audit list` table, newest first. */
export function renderList(rows: AuditRow[]): string {
  if (rows.length === 0) return "No audit rows match.\n";
  const head = ["ID", "TIME (UTC)", "CALL", "VERDICT", "DECISION", "BY", "LATENCY", "ERROR"];
  const cells = rows.map((r) => [
    String(r.id),
    r.time.replace("T", " ").replace(/\.\d+Z$/, ""),
    `${r.server}__${r.tool}`,
    r.verdict,
    r.decision,
    r.decidedBy ?? "-",
    latency(r.latencyMs),
    r.error === null ? "" : clip(r.error.replace(/\s+/g, " "), 60),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [style.bold(fmt(head)), ...cells.map(fmt)].join("\n") + "\n";
}

/** Every field of one row, arguments pretty-printed. */
export function renderShow(r: AuditRow): string {
  const fields: [string, string][] = [
    ["id", String(r.id)],
    ["time", r.time],
    ["server", r.server],
    ["tool", r.tool],
    ["verdict", r.verdict],
    ["risk", r.risk],
    ["reason", r.reason],
    ["rule", r.rule],
    ["decision", r.decision],
    ["decided by", r.decidedBy ?? "-"],
    ["latency", `${r.latencyMs} ms`],
    ["result bytes", r.resultBytes === null ? "-" : String(r.resultBytes)],
    ["error", r.error ?? "-"],
    ["session", r.session ?? "-"],
    ["args hash", r.argsHash],
    ["prev hash", r.prevHash],
    ["hash", r.hash],
  ];
  const width = Math.max(...fields.map(([k]) => k.length)) + 1;
  const lines = fields.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`);
  const args = JSON.stringify(r.args, null, 2).split("\n").map((l) => `  ${l}`).join("\n");
  lines.push(`args${r.argsTruncated ? " (truncated)" : ""}:`, args);
  return lines.join("\n") + "\n";
}

/** The verify report for people. */
export function renderVerify(result: VerifyResult): string {
  if (result.ok) return `audit log OK: ${result.rows} rows, chain intact, head matches\n`;
  const total = result.problems.length + result.moreProblems;
  const lines = [style.red(`audit log FAILED verification: ${result.rows} rows, ${total} problem${total === 1 ? "" : "s"}`)];
  for (const p of result.problems) lines.push(`  ${p.id === 0 ? "file" : `row ${p.id}`}  ${p.kind}: ${p.message}`);
  if (result.moreProblems > 0) lines.push(`  … and ${result.moreProblems} more`);
  return lines.join("\n") + "\n";
}

/** Write one JSON line per row, waiting whenever the stream's buffer is full. */
async function writeLines(rows: Iterable<AuditRow>, out: Writable): Promise<number> {
  let failed: Error | undefined;
  const onError = (err: Error): void => {
    failed = err;
  };
  out.on("error", onError);
  let n = 0;
  try {
    for (const row of rows) {
      if (failed) break;
      n++;
      if (!out.write(`${JSON.stringify(row)}\n`)) {
        await new Promise<void>((done) => {
          const finish = (): void => {
            out.off("drain", finish);
            out.off("error", finish);
            done();
          };
          out.on("drain", finish);
          out.on("error", finish);
        });
      }
    }
  } finally {
    out.off("error", onError);
  }
  if (failed) throw new UsageError(`Cannot write the export: ${failed.message}.`, { cause: failed });
  return n;
}

/** Export to a new 0600 file (the rows hold redacted but still private arguments). */
async function exportToFile(rows: Iterable<AuditRow>, file: string): Promise<number> {
  let fd: number;
  try {
    fd = openSync(file, "w", 0o600);
  } catch (err) {
    throw new UsageError(`Cannot create ${file}: ${(err as Error).message}.`, { cause: err });
  }
  // The stream owns the descriptor from here on and closes it when done or destroyed.
  const stream = createWriteStream("", { fd });
  try {
    const n = await writeLines(rows, stream);
    stream.end();
    await finished(stream);
    return n;
  } catch (err) {
    stream.destroy();
    throw err instanceof UsageError ? err : new UsageError(`Cannot write ${file}: ${(err as Error).message}.`, { cause: err });
  }
}

/** The `audit` command and its subcommands. */
export function auditCommand(): Command {
  const cmd = new Command("audit")
    .description("Read, verify and export the tamper-evident log of every tool call that passed the gateway.")
    .option("--db <file>", "the audit log file (default: config audit.path, else ~/.local/state/luminaguard/audit.db)")
    .option("--config <file>", "config file (default ~/.config/luminaguard/config.json)")
    .addHelpText("after", HELP_AFTER);

  cmd
    .command("list")
    .description("List audited tool calls, newest first.")
    .option("-n, --limit <n>", "show at most N rows (at most 10000)", "50")
    .option("--before <id>", "only rows older than this id (to page back)")
    .option("--server <name>", "only calls to this server")
    .option("--tool <name>", "only calls of this tool (the server's own name, e.g. write_file)")
    .addOption(new Option("--decision <d>", "only calls with this decision").choices([...AUDIT_DECISIONS]))
    .option("--since <when>", "only calls since a time (2025-06-01T12:00:00Z) or for a duration back (30m, 2h)")
    .option("--json", "print a JSON array of rows")
    .addHelpText("after", "\nExamples:\n  luminaguard audit list\n  luminaguard audit list --server fs --tool write_file --since 2h\n  luminaguard audit list --decision denied --json | jq '.[].args'")
    .action(async (flags: ListFlags, sub: Command) => {
      const filter = {
        limit: Math.min(positiveInt(flags.limit, "--limit"), 10_000),
        beforeId: flags.before === undefined ? undefined : positiveInt(flags.before, "--before"),
        server: flags.server,
        tool: flags.tool,
        decision: flags.decision,
        since: flags.since === undefined ? undefined : parseSince(flags.since),
      };
      const rows = await withLog(sub, (store) => store.list(filter));
      process.stdout.write(flags.json ? `${JSON.stringify(rows, null, 2)}\n` : renderList(rows));
    });

  cmd
    .command("show")
    .description("Print every field of one audited call, including its (redacted) arguments.")
    .argument("<id>", "row id, as `audit list` prints it")
    .option("--json", "print the row as JSON")
    .addHelpText("after", "\nExamples:\n  luminaguard audit show 42\n  luminaguard audit show 42 --json | jq .args")
    .action(async (idText: string, flags: { json?: boolean }, sub: Command) => {
      const id = positiveInt(idText, "the row id");
      const row = await withLog(sub, (store) => store.get(id));
      if (!row) {
        // Not a crash of ours: exit 1 like `grep` finding nothing, not the runtime-failure code.
        printError(new AuditError("E_AUDIT_NOT_FOUND", `The audit log has no row ${id}. See the ids with: luminaguard audit list`));
        process.exitCode = EXIT.failure;
        return;
      }
      process.stdout.write(flags.json ? `${JSON.stringify(row, null, 2)}\n` : renderShow(row));
    });

  cmd
    .command("verify")
    .description("Check the hash chain and head records; name every row that was edited, deleted or moved.")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Exit codes: 0 the log is intact; 1 tampering found (each problem names a row id).
Cannot detect: deleting the database together with its .head file, or rewriting the
whole chain and both head records; keep a copy of the head somewhere else for that.

Examples:
  luminaguard audit verify
  luminaguard audit verify --json | jq '.problems[] | .id'`,
    )
    .action(async (flags: { json?: boolean }, sub: Command) => {
      const result = await withLog(sub, (store) => store.verify());
      process.stdout.write(flags.json ? `${JSON.stringify(result, null, 2)}\n` : renderVerify(result));
      if (!result.ok) process.exitCode = EXIT.failure;
    });

  cmd
    .command("export")
    .description("Write every row, oldest first, as JSON Lines (one row per line), streamed.")
    .option("--json", "JSON Lines (the default and, for now, only format)")
    .option("-o, --out <file>", "write to this file (created 0600) instead of stdout")
    .addHelpText("after", "\nExamples:\n  luminaguard audit export --json > audit.jsonl\n  luminaguard audit export --json --out /backup/audit.jsonl")
    .action(async (flags: { json?: boolean; out?: string }, sub: Command) => {
      await withLog(sub, async (store) => {
        if (flags.out === undefined) {
          await writeLines(store.exportAll(), process.stdout);
          return;
        }
        const n = await exportToFile(store.exportAll(), flags.out);
        process.stderr.write(`exported ${n} rows to ${flags.out}\n`);
      });
    });

  return cmd;
}
