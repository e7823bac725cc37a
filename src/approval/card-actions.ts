/**
 * Diff Card bodies for effects outside files: commands, messages and requests,
 * money, and the generic fallback (the arguments themselves, pretty-printed).
 */
import { asText, findArg, stringArg } from "./args.js";
import type { BodyAndSummary } from "./card-files.js";
import { canonicalJson } from "./call-hash.js";

/** The argument names each kind reads, most specific first. */
export const ARG_NAMES = {
  argv: ["argv"],
  command: ["command", "cmd", "script", "commandline"],
  commandArgs: ["args", "arguments"],
  cwd: ["cwd", "workdir", "workingdirectory", "dir", "directory"],
  recipient: ["to", "recipient", "recipients", "email", "channel", "channelid", "phone", "phonenumber", "chatid", "user", "username"],
  endpoint: ["url", "endpoint", "uri", "webhook", "webhookurl"],
  subject: ["subject", "title"],
  body: ["body", "text", "message", "content", "html", "data", "payload", "json"],
  amount: ["amount", "price", "sum", "cost", "value"],
  from: ["from", "source", "sourceaccount", "fromaccount", "account"],
  to: ["to", "recipient", "destination", "destinationaccount", "toaccount", "payee", "iban"],
  currency: ["currency", "currencycode"],
} as const;

/** True when the args carry something runnable. */
export function looksLikeCommand(args: Record<string, unknown>): boolean {
  return findArg(args, [...ARG_NAMES.argv, ...ARG_NAMES.command]) !== undefined;
}

/** The exact argv and cwd. A shell string stays one element: that string is what will run. */
export function commandBody(args: Record<string, unknown>): BodyAndSummary {
  const cwd = stringArg(args, ARG_NAMES.cwd) ?? null;
  const argvArg = findArg(args, ARG_NAMES.argv)?.value;
  let argv: string[];
  if (Array.isArray(argvArg)) argv = argvArg.map(asText);
  else {
    const command = findArg(args, ARG_NAMES.command)?.value;
    const rest = findArg(args, ARG_NAMES.commandArgs)?.value;
    const head = Array.isArray(command) ? command.map(asText) : command === undefined ? [] : [asText(command)];
    argv = [...head, ...(Array.isArray(rest) ? rest.map(asText) : rest === undefined ? [] : [asText(rest)])];
  }
  return {
    body: { kind: "command", argv, cwd },
    summary: `would run ${formatArgv(argv)}${cwd ? ` in ${cwd}` : ""}`,
  };
}

/** argv as a person would type it: one shell string as it is, several words quoted where needed. */
export function formatArgv(argv: readonly string[]): string {
  if (argv.length === 1) return argv[0] ?? "";
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

/** True when the args name someone or somewhere to send to. */
export function looksLikeMessage(args: Record<string, unknown>): boolean {
  return findArg(args, [...ARG_NAMES.recipient, ...ARG_NAMES.endpoint]) !== undefined;
}

/** Who or where, and exactly what is sent. */
export function messageBody(args: Record<string, unknown>, maxBytes: number): BodyAndSummary {
  const recipientArg = findArg(args, ARG_NAMES.recipient)?.value;
  const recipient = recipientArg === undefined ? null : Array.isArray(recipientArg) ? recipientArg.map(asText).join(", ") : asText(recipientArg);
  const endpoint = stringArg(args, ARG_NAMES.endpoint) ?? null;
  const subject = stringArg(args, ARG_NAMES.subject) ?? null;
  const bodyArg = findArg(args, ARG_NAMES.body)?.value;
  const fullBody = bodyArg === undefined ? "" : typeof bodyArg === "string" ? bodyArg : prettyJson(bodyArg);
  const { text, truncated } = cutText(fullBody, maxBytes);
  const method = stringArg(args, ["method"])?.toUpperCase();
  const where = recipient !== null ? `a message to ${recipient}` : `a ${method ? `${method} ` : ""}request to ${endpoint ?? "an unnamed endpoint"}`;
  return {
    body: { kind: "message", recipient, endpoint, subject, body: text, truncated },
    summary: `would send ${where}${subject ? `: "${subject}"` : ""} (${Buffer.byteLength(fullBody).toLocaleString("en-US")} bytes)`,
  };
}

/** True when the args carry an amount. */
export function looksLikeMoney(args: Record<string, unknown>): boolean {
  return findArg(args, ARG_NAMES.amount.filter((a) => a !== "value")) !== undefined || (findArg(args, ["value"]) !== undefined && findArg(args, ARG_NAMES.currency) !== undefined);
}

/** From, to, amount, currency: nothing else matters as much. */
export function moneyBody(args: Record<string, unknown>): BodyAndSummary {
  const amountArg = findArg(args, ARG_NAMES.amount)?.value;
  const amount = amountArg === undefined ? "?" : asText(amountArg);
  const from = optText(findArg(args, ARG_NAMES.from)?.value);
  const to = optText(findArg(args, ARG_NAMES.to)?.value);
  const currency = optText(findArg(args, ARG_NAMES.currency)?.value);
  return {
    body: { kind: "money", from, to, amount, currency },
    summary: `would transfer ${amount}${currency ? ` ${currency}` : ""}${from ? ` from ${from}` : ""}${to ? ` to ${to}` : ""}`,
  };
}

/** The arguments themselves, pretty and in canonical key order. */
export function genericBody(args: Record<string, unknown>, maxBytes: number, what: string): BodyAndSummary {
  const { text, truncated } = cutText(prettyJson(args), maxBytes);
  const count = Object.keys(args).length;
  return {
    body: { kind: "generic", args: text, truncated },
    summary: `${what} with ${count} argument${count === 1 ? "" : "s"}`,
  };
}

/** Canonical (sorted keys) JSON, indented; falls back to plain JSON for values canonical JSON refuses. */
export function prettyJson(value: unknown): string {
  try {
    return JSON.stringify(JSON.parse(canonicalJson(value)), null, 2);
  } catch {
    try {
      return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v), 2) ?? String(value);
    } catch {
      return String(value);
    }
  }
}

/** Cut text to maxBytes, on a line boundary when one is near; the cut is announced with what was left out. */
export function cutText(text: string, maxBytes: number): { text: string; truncated: boolean } {
  const total = Buffer.byteLength(text);
  if (total <= maxBytes) return { text, truncated: false };
  let head = Buffer.from(text).subarray(0, maxBytes).toString("utf8").replace(/\uFFFD$/, "");
  const lastNewline = head.lastIndexOf("\n");
  if (lastNewline > head.length / 2) head = head.slice(0, lastNewline);
  const rest = text.slice(head.length);
  const moreLines = rest.split("\n").length - (rest.startsWith("\n") ? 1 : 0);
  const n = (x: number) => x.toLocaleString("en-US");
  return { text: `${head}\n… ${n(total - Buffer.byteLength(head))} more bytes (${n(moreLines)} more line${moreLines === 1 ? "" : "s"})`, truncated: true };
}

function optText(value: unknown): string | null {
  return value === undefined || value === null ? null : asText(value);
}
