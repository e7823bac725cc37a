/**
 * Diff Card bodies for file effects: write (create or overwrite), edit, delete
 * and move. Each reads the current state through the ContentReader and, when
 * that fails, says so on the card instead of failing the card.
 */
import { applyEdits, normalizeLineEndings, type TextEdit } from "./edits.js";
import { safeReadText, safeStat, type ContentReader } from "./reader.js";
import type { DiffCardBody } from "./types.js";
import { pseudoDiff, unifiedDiff, type DiffLimits } from "./unified.js";

/** A card body and its headline, without the "server__tool" prefix. */
export interface BodyAndSummary {
  body: DiffCardBody;
  summary: string;
}

const n = (x: number) => x.toLocaleString("en-US");
const lines = (added: number, removed: number) => `(+${n(added)} −${n(removed)} lines)`;

/** write_file and friends: the new content against the current one. `append` adds to the end instead. */
export async function fileWriteBody(reader: ContentReader, path: string, content: string, limits: DiffLimits, append = false): Promise<BodyAndSummary> {
  const current = await safeReadText(reader, path);
  const newBytes = Buffer.byteLength(content);
  if (!current.ok) {
    const note = `current content unavailable: ${current.reason}`;
    const d = unifiedDiff(path, "", content, false, limits, [`# ${note}`, "# showing the new content only"]);
    return {
      body: { kind: "file-write", path, existed: false, diff: d.diff, added: d.added, removed: 0, truncated: d.truncated, newBytes },
      summary: `would write ${path} ${lines(d.added, 0)}; ${note}`,
    };
  }
  const existed = current.value !== null;
  const before = current.value ?? "";
  const after = append ? before + content : content;
  const d = unifiedDiff(path, before, after, existed, limits);
  const verb = !existed ? "create" : append ? "append to" : "overwrite";
  const unchanged = existed && before === after ? " (no change)" : "";
  return {
    body: { kind: "file-write", path, existed, diff: d.diff, added: d.added, removed: d.removed, truncated: d.truncated, newBytes: Buffer.byteLength(after) },
    summary: `would ${verb} ${path} ${lines(d.added, d.removed)}${unchanged}`,
  };
}

/** edit_file: apply the edits to the current content as the server will, and diff; a non-matching edit is called out. */
export async function fileEditBody(reader: ContentReader, path: string, edits: TextEdit[], dryRun: boolean, limits: DiffLimits): Promise<BodyAndSummary> {
  const dry = dryRun ? " (dry run: the server only reports the diff and writes nothing)" : "";
  const current = await safeReadText(reader, path);
  if (!current.ok || current.value === null) {
    const note = current.ok ? `${path} does not exist, so the edit will fail on the server` : `current content unavailable: ${current.reason}`;
    return requestedEdits(path, edits, note, limits, `would edit ${path}; ${note}${dry}`, current.ok);
  }
  const before = normalizeLineEndings(current.value);
  const outcome = applyEdits(before, edits);
  if (!outcome.ok) {
    const note = `EDIT WILL FAIL: edit ${outcome.failed} of ${edits.length} does not match: its oldText is not in ${path}; the server rejects the whole call and nothing changes`;
    return requestedEdits(path, edits, note, limits, `would fail to edit ${path}: edit ${outcome.failed} of ${edits.length} does not match${dry}`, true);
  }
  const notes = outcome.loose.length > 0 ? [`# edit${outcome.loose.length > 1 ? "s" : ""} ${outcome.loose.join(", ")} matched only when indentation is ignored; shown re-indented as the server will write it`] : [];
  const d = unifiedDiff(path, before, outcome.content, true, limits, notes);
  return {
    body: { kind: "file-write", path, existed: true, diff: d.diff, added: d.added, removed: d.removed, truncated: d.truncated, newBytes: Buffer.byteLength(outcome.content) },
    summary: `would edit ${path} ${lines(d.added, d.removed)}${dry}`,
  };
}

/** When edits cannot be applied, show what was asked: each oldText as removed lines, each newText as added. */
function requestedEdits(path: string, edits: TextEdit[], note: string, limits: DiffLimits, summary: string, existed: boolean): BodyAndSummary {
  const out = [`# ${note}`, "# the requested edits:"];
  for (const [i, edit] of edits.entries()) {
    out.push(`@@ edit ${i + 1} of ${edits.length} @@`);
    for (const l of normalizeLineEndings(edit.oldText).split("\n")) out.push(`-${l}`);
    for (const l of normalizeLineEndings(edit.newText).split("\n")) out.push(`+${l}`);
  }
  const d = pseudoDiff(out, limits);
  return {
    body: { kind: "file-write", path, existed, diff: d.diff, added: d.added, removed: d.removed, truncated: d.truncated, newBytes: 0 },
    summary,
  };
}

/** delete/remove: what goes. */
export async function fileDeleteBody(reader: ContentReader, path: string): Promise<BodyAndSummary> {
  const st = await safeStat(reader, path);
  if (!st.ok) {
    return {
      body: { kind: "file-delete", path, existed: true, bytes: null, entries: null },
      summary: `would delete ${path}; current state unavailable: ${st.reason}`,
    };
  }
  if (st.value === null) {
    return { body: { kind: "file-delete", path, existed: false, bytes: null, entries: null }, summary: `would delete ${path}, which does not exist` };
  }
  const { type, size, entries } = st.value;
  const what =
    type === "dir"
      ? `directory ${path}${entries === undefined ? "" : ` with ${n(entries)} entr${entries === 1 ? "y" : "ies"}`}`
      : `${type === "file" ? "file" : "special file"} ${path} (${n(size)} bytes)`;
  return {
    body: { kind: "file-delete", path, existed: true, bytes: size, entries: entries ?? null },
    summary: `would delete ${what}`,
  };
}

/** move/rename: from, to, and whether something at the destination is replaced. */
export async function fileMoveBody(reader: ContentReader, from: string, to: string): Promise<BodyAndSummary> {
  const st = await safeStat(reader, to);
  if (!st.ok) {
    return {
      body: { kind: "file-move", from, to, overwrites: false },
      summary: `would move ${from} to ${to}; whether ${to} exists is unknown: ${st.reason}`,
    };
  }
  const overwrites = st.value !== null;
  return {
    body: { kind: "file-move", from, to, overwrites },
    summary: `would move ${from} to ${to}${overwrites ? `, replacing the existing ${st.value?.type === "dir" ? "directory" : "file"}` : ""}`,
  };
}
