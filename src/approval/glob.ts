/**
 * The tiny glob used by user rules and the policy allow-list: `*` is any run of
 * characters (including none, `_` and `/`), `?` is exactly one character, and the
 * pattern must match the whole text. Nothing else is special, so a tool name with
 * dots or brackets matches itself literally.
 */

const cache = new Map<string, RegExp>();

/** The anchored RegExp for a glob pattern. */
export function globToRegExp(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (re) return re;
  let source = "";
  for (const ch of pattern) {
    if (ch === "*") source += "[\\s\\S]*";
    else if (ch === "?") source += "[\\s\\S]";
    // Only syntax characters: with the `u` flag an escaped "-" or "/" is a SyntaxError.
    else source += ch.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  re = new RegExp(`^${source}$`, "u");
  if (cache.size > 1000) cache.clear();
  cache.set(pattern, re);
  return re;
}

/** True when `text` matches the whole glob `pattern` (case-sensitive). */
export function globMatch(pattern: string, text: string): boolean {
  return globToRegExp(pattern).test(text);
}
