/**
 * Reading loosely-named arguments: tools spell the same thing many ways
 * (`path`, `file_path`, `filePath`), so lookups compare squashed keys.
 */

/** "file_path" / "filePath" / "FILEPATH" → "filepath". */
export function squashKey(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]/g, "");
}

/** The first present argument among `names` (compared squashed), with its real key. */
export function findArg(args: Record<string, unknown>, names: readonly string[]): { key: string; value: unknown } | undefined {
  const wanted = names.map(squashKey);
  for (const name of wanted) {
    for (const [key, value] of Object.entries(args)) {
      if (squashKey(key) === name && value !== undefined && value !== null && value !== "") return { key, value };
    }
  }
  return undefined;
}

/** The first of `names` whose value is a string. */
export function stringArg(args: Record<string, unknown>, names: readonly string[]): string | undefined {
  const found = findArg(args, names);
  return typeof found?.value === "string" ? found.value : undefined;
}

/** A value shown as text: strings as they are, numbers as written, anything else as JSON. */
export function asText(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
