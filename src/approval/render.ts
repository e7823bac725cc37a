/**
 * Diff Cards as text for a terminal (or an MCP elicitation message, uncoloured)
 * and as plain JSON for the web page and the API.
 */
import { formatArgv } from "./card-actions.js";
import type { DiffCard } from "./types.js";
import { qualifiedName } from "./user-rules.js";

/** How to render a card as text. */
export interface RenderOptions {
  /** ANSI colours (the caller decides: TTY, NO_COLOR, --no-color). */
  color: boolean;
  /** Show the whole body the card holds, not the first PREVIEW_LINES lines. */
  full?: boolean | undefined;
  /** Cut lines longer than this (with "…") unless full; default 120. */
  width?: number | undefined;
}

/** Body lines shown when not full. */
export const PREVIEW_LINES = 40;

// Local, explicit-flag colours: src/cli/style.ts decides from process.stdout at
// load time, which is wrong for a card written to another stream or to MCP.
const paint = (on: boolean, code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);

/** The card as text: header, verdict and reason, headline, then the body. */
export function renderCardText(card: DiffCard, opts: RenderOptions): string {
  const c = {
    bold: paint(opts.color, "1"),
    dim: paint(opts.color, "2"),
    red: paint(opts.color, "31"),
    green: paint(opts.color, "32"),
    yellow: paint(opts.color, "33"),
    cyan: paint(opts.color, "36"),
  };
  const { verdict, risk, reason, rule } = card.classification;
  const badge = verdict === "red" ? c.red(c.bold("RED")) : c.green(c.bold("GREEN"));
  const riskText = risk === "critical" || risk === "high" ? c.red(risk) : risk === "medium" ? c.yellow(risk) : risk;
  const header = [
    `${c.bold(qualifiedName(card.server, card.tool))}  ${badge}  risk ${riskText}`,
    `${c.dim("why:")} ${reason} ${c.dim(`(${rule})`)}`,
    c.bold(card.summary),
  ];

  const body = bodyLines(card);
  const width = opts.width ?? 120;
  let shown = body.lines;
  let hidden = 0;
  if (!opts.full && shown.length > PREVIEW_LINES) {
    hidden = shown.length - PREVIEW_LINES;
    shown = shown.slice(0, PREVIEW_LINES);
  }
  if (!opts.full) shown = shown.map((l) => (l.length > width ? `${l.slice(0, Math.max(1, width - 1))}…` : l));
  const colored = body.diff ? shown.map((l) => colorDiffLine(l, c)) : shown;
  const footer: string[] = [];
  if (hidden > 0) footer.push(c.dim(`… ${hidden.toLocaleString("en-US")} more lines on this card (view the full card to see them)`));
  if (body.truncated) footer.push(c.dim("(the card itself is cut; the counts above cover everything)"));
  return [...header, "", ...colored, ...footer, ""].join("\n");
}

/** The card as a plain JSON value (what the API and the web page get); a deep copy, safe to mutate. */
export function cardJson(card: DiffCard): Record<string, unknown> {
  return JSON.parse(JSON.stringify(card)) as Record<string, unknown>;
}

function bodyLines(card: DiffCard): { lines: string[]; diff: boolean; truncated: boolean } {
  const b = card.body;
  switch (b.kind) {
    case "file-write":
      return {
        lines: [`${b.existed ? "file" : "new file"} ${b.path}  +${b.added} −${b.removed}  (${b.newBytes.toLocaleString("en-US")} bytes after)`, ...(b.diff === "" ? ["(no change)"] : b.diff.split("\n"))],
        diff: true,
        truncated: b.truncated,
      };
    case "file-delete":
      return {
        lines: [
          `delete ${b.path}`,
          !b.existed ? "  (does not exist)" : b.entries !== null ? `  directory, ${b.entries} entries` : b.bytes !== null ? `  ${b.bytes.toLocaleString("en-US")} bytes` : "  (size unknown)",
        ],
        diff: false,
        truncated: false,
      };
    case "file-move":
      return { lines: [`move ${b.from}`, `  to ${b.to}${b.overwrites ? "  (REPLACES what is there)" : ""}`], diff: false, truncated: false };
    case "command":
      return { lines: [`$ ${formatArgv(b.argv)}`, `  cwd: ${b.cwd ?? "(the server's default)"}`, `  argv: ${JSON.stringify(b.argv)}`], diff: false, truncated: false };
    case "message":
      return {
        lines: [
          ...(b.recipient !== null ? [`to: ${b.recipient}`] : []),
          ...(b.endpoint !== null ? [`endpoint: ${b.endpoint}`] : []),
          ...(b.subject !== null ? [`subject: ${b.subject}`] : []),
          "",
          ...b.body.split("\n"),
        ],
        diff: false,
        truncated: b.truncated,
      };
    case "money":
      return {
        lines: [`amount: ${b.amount}${b.currency ? ` ${b.currency}` : ""}`, `from: ${b.from ?? "(not given)"}`, `to: ${b.to ?? "(not given)"}`],
        diff: false,
        truncated: false,
      };
    case "generic":
      return { lines: ["arguments:", ...b.args.split("\n")], diff: false, truncated: b.truncated };
  }
}

function colorDiffLine(line: string, c: Record<"red" | "green" | "cyan" | "dim" | "bold", (s: string) => string>): string {
  if (line.startsWith("+++") || line.startsWith("---")) return c.bold(line);
  if (line.startsWith("@@")) return c.cyan(line);
  if (line.startsWith("+")) return c.green(line);
  if (line.startsWith("-")) return c.red(line);
  if (line.startsWith("#") || line.startsWith("…")) return c.dim(line);
  return line;
}
