/**
 * Applies `edit_file` edits the way @modelcontextprotocol/server-filesystem does,
 * so the card shows what the server will really write: line endings normalised
 * to \n; edits applied in order, each to the result of the previous; an exact
 * match replaces the first occurrence (with String.prototype.replace, so `$&` and
 * friends in newText behave as they will on the server); failing that, a match
 * line by line ignoring leading and trailing whitespace, re-indented like the
 * server does; failing that, the whole call fails and nothing is written.
 */

/** One edit as the filesystem server takes it. */
export interface TextEdit {
  oldText: string;
  newText: string;
}

/** The outcome of applying all edits. */
export type EditOutcome =
  | { ok: true; content: string; /** Edits that matched only when whitespace was ignored (1-based). */ loose: number[] }
  | { ok: false; /** 1-based index of the first edit that does not match. */ failed: number; oldText: string };

/** \r\n → \n, as the server does before matching. */
export function normalizeLineEndings(text: string): string {
  return text.replace(/\r\n/g, "\n");
}

/** Read `edits` from untrusted args; undefined when they are not a list of {oldText, newText} strings. */
export function parseEdits(value: unknown): TextEdit[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const edits: TextEdit[] = [];
  for (const item of value) {
    if (item === null || typeof item !== "object") return undefined;
    const { oldText, newText } = item as Record<string, unknown>;
    if (typeof oldText !== "string" || typeof newText !== "string") return undefined;
    edits.push({ oldText, newText });
  }
  return edits;
}

/** Apply edits to `current` as the filesystem server would. */
export function applyEdits(current: string, edits: readonly TextEdit[]): EditOutcome {
  let content = normalizeLineEndings(current);
  const loose: number[] = [];
  for (const [i, edit] of edits.entries()) {
    const oldText = normalizeLineEndings(edit.oldText);
    const newText = normalizeLineEndings(edit.newText);
    if (content.includes(oldText)) {
      content = content.replace(oldText, newText);
      continue;
    }
    const replaced = replaceIgnoringWhitespace(content, oldText, newText);
    if (replaced === undefined) return { ok: false, failed: i + 1, oldText: edit.oldText };
    content = replaced;
    loose.push(i + 1);
  }
  return { ok: true, content, loose };
}

function replaceIgnoringWhitespace(content: string, oldText: string, newText: string): string | undefined {
  const oldLines = oldText.split("\n");
  const lines = content.split("\n");
  for (let i = 0; i <= lines.length - oldLines.length; i++) {
    const matches = oldLines.every((oldLine, j) => oldLine.trim() === (lines[i + j] ?? "").trim());
    if (!matches) continue;
    const indent = leadingWhitespace(lines[i] ?? "");
    const newLines = newText.split("\n").map((line, j) => {
      if (j === 0) return indent + line.trimStart();
      // The server keeps a line's indentation relative to the old text's, when both have one.
      const oldIndent = leadingWhitespace(oldLines[j] ?? "");
      const newIndent = leadingWhitespace(line);
      if (oldIndent && newIndent) return indent + " ".repeat(Math.max(0, newIndent.length - oldIndent.length)) + line.trimStart();
      return line;
    });
    lines.splice(i, oldLines.length, ...newLines);
    return lines.join("\n");
  }
  return undefined;
}

function leadingWhitespace(line: string): string {
  return /^\s*/.exec(line)?.[0] ?? "";
}
