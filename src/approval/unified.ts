/**
 * Unified diffs for Diff Cards, cut to a size a person can read. The counts of
 * added and removed lines are always for the whole diff, so a card never makes a
 * big change look small; the cut is announced in the last line with what was cut.
 */
import { FILE_HEADERS_ONLY, formatPatch, structuredPatch, type StructuredPatch } from "diff";

/** A diff ready for a card. */
export interface DiffText {
  diff: string;
  added: number;
  removed: number;
  truncated: boolean;
}

/** Limits on what a card shows. */
export interface DiffLimits {
  maxLines: number;
  maxBytes: number;
}

// Myers' diff costs about (size × edits); on files that differ almost everywhere
// it would stall the hub for seconds. Past these bounds the card shows "all old
// lines removed, all new lines added", which is true, only longer. (jsdiff's
// async mode was tried: it yields a timer tick per edit step, far slower.)
const DIFF_TIMEOUT_MS = 1_000;
const DIFF_MAX_EDITS = 2_000;

/** Diff `oldText` → `newText` for `path`; `existed` false diffs from /dev/null. `notes` go first, before the headers. */
export function unifiedDiff(path: string, oldText: string, newText: string, existed: boolean, limits: DiffLimits, notes: string[] = []): DiffText {
  const oldName = existed ? `a${path.startsWith("/") ? "" : "/"}${path}` : "/dev/null";
  const newName = `b${path.startsWith("/") ? "" : "/"}${path}`;
  // One side empty: the diff is known without searching for it.
  const patch =
    oldText === "" || newText === ""
      ? replaceAll(oldName, newName, oldText, newText)
      : (structuredPatch(oldName, newName, oldText, newText, undefined, undefined, { context: 3, timeout: DIFF_TIMEOUT_MS, maxEditLength: DIFF_MAX_EDITS }) ??
        replaceAll(oldName, newName, oldText, newText));
  let added = 0;
  let removed = 0;
  for (const hunk of patch.hunks) {
    for (const line of hunk.lines) {
      if (line.startsWith("+")) added++;
      else if (line.startsWith("-")) removed++;
    }
  }
  const body = patch.hunks.length === 0 ? [] : formatPatch(patch, FILE_HEADERS_ONLY).replace(/\n$/, "").split("\n");
  return { ...cutLines([...notes, ...body], limits), added, removed };
}

/** A diff of hand-made lines (for edits that cannot be applied), cut like any other. */
export function pseudoDiff(lines: string[], limits: DiffLimits): DiffText {
  let added = 0;
  let removed = 0;
  for (const line of lines) {
    if (line.startsWith("+")) added++;
    else if (line.startsWith("-")) removed++;
  }
  return { ...cutLines(lines, limits), added, removed };
}

/** Keep at most maxLines lines and maxBytes bytes; the last line says what was left out. */
export function cutLines(lines: string[], limits: DiffLimits): { diff: string; truncated: boolean } {
  let bytes = 0;
  let kept = 0;
  for (const line of lines) {
    if (kept >= limits.maxLines) break;
    const size = Buffer.byteLength(line) + 1;
    if (bytes + size > limits.maxBytes) break;
    bytes += size;
    kept++;
  }
  if (kept === lines.length) return { diff: lines.join("\n"), truncated: false };
  const rest = lines.slice(kept);
  const plus = rest.filter((l) => l.startsWith("+")).length;
  const minus = rest.filter((l) => l.startsWith("-")).length;
  const n = (x: number) => x.toLocaleString("en-US");
  const note = `… ${n(rest.length)} more line${rest.length === 1 ? "" : "s"} (+${n(plus)} −${n(minus)})`;
  return { diff: [...lines.slice(0, kept), note].join("\n"), truncated: true };
}

function replaceAll(oldName: string, newName: string, oldText: string, newText: string): StructuredPatch {
  const split = (t: string) => (t === "" ? [] : t.replace(/\n$/, "").split("\n"));
  // A last line without a newline gets the marker patch(1) expects after it.
  const mark = (t: string, lines: string[]) => (t !== "" && !t.endsWith("\n") ? [...lines, "\\ No newline at end of file"] : lines);
  const oldLines = split(oldText);
  const newLines = split(newText);
  return {
    oldFileName: oldName,
    newFileName: newName,
    oldHeader: undefined,
    newHeader: undefined,
    hunks: [
      {
        // jsdiff's own convention: an empty side still starts at 1 (formatPatch prints it as "-0,0").
        oldStart: 1,
        oldLines: oldLines.length,
        newStart: 1,
        newLines: newLines.length,
        lines: [...mark(oldText, oldLines.map((l) => `-${l}`)), ...mark(newText, newLines.map((l) => `+${l}`))],
      },
    ],
  };
}
