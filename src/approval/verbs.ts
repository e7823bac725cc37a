/**
 * The verb table: the one source of truth for what a word in a tool's name says
 * about its effect. Green verbs only look; red verbs change something, with a
 * risk that says how bad a mistake would be (can it be undone? does it leave the
 * machine?). Words not in the table say nothing; a name with no known verb at all
 * is red (`default:unknown`).
 *
 * Nouns that happen to look like verbs ("commit" in `get_commit`) make a call red:
 * that errs on the safe side, and a user rule turns it green in one line.
 */
import type { RiskLevel, Verdict } from "./types.js";

/** What one verb says about a call. */
export interface VerbInfo {
  verdict: Verdict;
  risk: RiskLevel;
  /** Completes "tool name verb 'x' …": "only reads", "deletes things". */
  effect: string;
}

const green = (effect = "only reads"): VerbInfo => ({ verdict: "green", risk: "low", effect });
const red = (risk: RiskLevel, effect: string): VerbInfo => ({ verdict: "red", risk, effect });

const GREEN_WORDS = [
  "read", "list", "search", "get", "view", "fetch", "status", "show", "describe", "find", "query", "head", "tail",
  "stat", "stats", "info", "tree", "ls", "cat", "grep", "lookup", "inspect", "browse", "preview", "count", "check",
  "validate", "compare", "diff", "explain", "peek", "exists", "ping", "whoami", "echo", "summarize", "lint", "locate",
  "scan", "poll",
];

const RED: Record<string, VerbInfo> = {
  // local, undoable-ish changes
  create: red("medium", "creates things"),
  write: red("medium", "writes data"),
  edit: red("medium", "edits data"),
  update: red("medium", "updates data"),
  modify: red("medium", "modifies data"),
  change: red("medium", "changes data"),
  replace: red("medium", "replaces data"),
  rename: red("medium", "renames things"),
  move: red("medium", "moves things"),
  mv: red("medium", "moves things"),
  copy: red("low", "copies things"),
  cp: red("low", "copies things"),
  duplicate: red("low", "copies things"),
  insert: red("medium", "inserts data"),
  set: red("medium", "sets values"),
  add: red("medium", "adds things"),
  append: red("medium", "appends data"),
  save: red("medium", "saves data"),
  put: red("medium", "stores data"),
  patch: red("medium", "patches data"),
  mkdir: red("low", "creates directories"),
  touch: red("low", "creates files"),
  apply: red("medium", "applies changes"),
  merge: red("medium", "merges changes"),
  import: red("medium", "imports data"),
  configure: red("medium", "changes configuration"),
  config: red("medium", "changes configuration"),
  enable: red("medium", "changes configuration"),
  disable: red("medium", "changes configuration"),
  assign: red("medium", "changes assignments"),
  upload: red("medium", "uploads data"),
  commit: red("medium", "commits changes"),
  comment: red("medium", "posts comments"),
  reply: red("high", "sends messages"),
  schedule: red("medium", "schedules actions"),
  // destructive or leaving the machine
  delete: red("high", "deletes things"),
  remove: red("high", "removes things"),
  rm: red("high", "removes things"),
  rmdir: red("high", "removes directories"),
  unlink: red("high", "removes files"),
  erase: red("high", "erases data"),
  destroy: red("high", "destroys things"),
  drop: red("high", "drops data"),
  truncate: red("high", "truncates data"),
  purge: red("high", "purges data"),
  wipe: red("high", "wipes data"),
  clear: red("high", "clears data"),
  reset: red("high", "resets state"),
  overwrite: red("high", "overwrites data"),
  kill: red("high", "kills processes"),
  terminate: red("high", "terminates things"),
  stop: red("medium", "stops things"),
  restart: red("medium", "restarts things"),
  reboot: red("high", "reboots machines"),
  shutdown: red("high", "shuts machines down"),
  revoke: red("high", "revokes access"),
  grant: red("high", "grants access"),
  send: red("high", "sends messages"),
  post: red("high", "posts data"),
  email: red("high", "sends email"),
  mail: red("high", "sends email"),
  notify: red("high", "sends notifications"),
  submit: red("high", "submits data"),
  push: red("high", "pushes changes"),
  publish: red("high", "publishes things"),
  release: red("high", "publishes releases"),
  deploy: red("high", "deploys things"),
  install: red("high", "installs software"),
  uninstall: red("high", "removes software"),
  execute: red("high", "executes code"),
  exec: red("high", "executes code"),
  run: red("high", "runs code"),
  shell: red("high", "runs shell commands"),
  bash: red("high", "runs shell commands"),
  eval: red("high", "evaluates code"),
  spawn: red("high", "starts processes"),
  invoke: red("high", "invokes actions"),
  trigger: red("high", "triggers actions"),
  approve: red("high", "approves things"),
  // money: irreversible and worth the most care
  transfer: red("critical", "moves money"),
  pay: red("critical", "pays money"),
  charge: red("critical", "charges money"),
  refund: red("critical", "moves money"),
  withdraw: red("critical", "moves money"),
  purchase: red("critical", "spends money"),
  buy: red("critical", "spends money"),
  sell: red("critical", "sells things"),
  sudo: red("critical", "runs as root"),
};

/** Every known verb → what it says. */
export const VERBS: ReadonlyMap<string, VerbInfo> = new Map<string, VerbInfo>([
  ...GREEN_WORDS.map((w): [string, VerbInfo] => [w, green()]),
  ...Object.entries(RED),
]);

const RISK_ORDER: Record<RiskLevel, number> = { low: 0, medium: 1, high: 2, critical: 3 };

/** The higher of two risks. */
export function maxRisk(a: RiskLevel, b: RiskLevel): RiskLevel {
  return RISK_ORDER[a] >= RISK_ORDER[b] ? a : b;
}

/** How a name's words combine: any red verb beats every green one, and the riskiest red verb speaks. */
export interface VerbVerdict {
  verdict: Verdict;
  risk: RiskLevel;
  verb: string;
  effect: string;
}

/** The verdict of a list of words, or undefined when none of them is a known verb. */
export function verbVerdict(words: readonly string[]): VerbVerdict | undefined {
  let best: VerbVerdict | undefined;
  for (const word of words) {
    const info = VERBS.get(word);
    if (!info) continue;
    const candidate = { verdict: info.verdict, risk: info.risk, verb: word, effect: info.effect };
    if (!best) best = candidate;
    else if (candidate.verdict === "red" && best.verdict === "green") best = candidate;
    else if (candidate.verdict === best.verdict && RISK_ORDER[candidate.risk] > RISK_ORDER[best.risk]) best = candidate;
  }
  return best;
}
