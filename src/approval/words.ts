/**
 * Splits tool and argument names into lower-case words, so that the classifier
 * matches whole words only: `format` must never look like `rm`, `address` like
 * `add`, or `reset` like `set`.
 */

/** "readTextFile" / "read_text_file" / "get-file-info" / "HTTPGet2Json" → lower-case words. */
export function splitWords(name: string): string[] {
  return (
    name
      // an acronym followed by a capitalised word: "HTTPGet" → "HTTP Get"
      .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
      // camelCase: "readText" → "read Text", "file2" stays attached only to digits
      .replace(/([a-z])([A-Z])/g, "$1 $2")
      // letters and digits are separate words: "v2get" → "v 2 get"
      .replace(/([A-Za-z])([0-9])/g, "$1 $2")
      .replace(/([0-9])([A-Za-z])/g, "$1 $2")
      .split(/[^A-Za-z0-9]+/)
      .filter((w) => w.length > 0)
      .map((w) => w.toLowerCase())
  );
}
