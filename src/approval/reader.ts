/**
 * How the Diff Card builder looks at the world: the hub implements ContentReader
 * by reading inside the same sandbox or server the call will run in. The builder
 * must still produce a card when the reader fails, so every read goes through
 * these wrappers, which turn a throw into a readable reason.
 */

/** What a path is, as the reader sees it. */
export interface PathStat {
  type: "file" | "dir" | "other";
  size: number;
  /** Number of entries, for a directory. */
  entries?: number | undefined;
}

/** Reads current state for a card; null means "does not exist". */
export interface ContentReader {
  readText(path: string): Promise<string | null>;
  stat(path: string): Promise<PathStat | null>;
}

/** A read that either worked (value, null for "does not exist") or failed with a reason to show. */
export type ReadResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** readText that never throws. */
export async function safeReadText(reader: ContentReader, path: string): Promise<ReadResult<string | null>> {
  return attempt(() => reader.readText(path));
}

/** stat that never throws. */
export async function safeStat(reader: ContentReader, path: string): Promise<ReadResult<PathStat | null>> {
  return attempt(() => reader.stat(path));
}

async function attempt<T>(fn: () => Promise<T>): Promise<ReadResult<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}
