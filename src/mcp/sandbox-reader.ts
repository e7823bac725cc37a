/**
 * Reads files where a sandboxed MCP server sees them, so a Diff Card shows the
 * current content the server would change. Goes through `Sandbox.files`, which
 * runs inside the sandbox (a symlink the server planted cannot make the host
 * follow it) and only reaches the sandbox's writable areas.
 */
import { posix } from "node:path";
import type { Sandbox } from "../sandbox/types.js";
import type { ContentReader } from "../approval/reader.js";
import { hasCode } from "../errors.js";

const decoder = new TextDecoder("utf-8", { fatal: false });

export function sandboxReader(sandbox: Sandbox, cwd: string): ContentReader {
  const abs = (p: string): string => posix.resolve(cwd, p);
  return {
    async readText(path) {
      try {
        return decoder.decode(await sandbox.files.read(abs(path)));
      } catch (err) {
        if (hasCode(err, "E_FILE_NOT_FOUND")) return null;
        throw err;
      }
    },
    async stat(path) {
      const full = abs(path);
      if (full === "/") return { type: "dir", size: 0 };
      let entries;
      try {
        entries = await sandbox.files.list(posix.dirname(full));
      } catch (err) {
        if (hasCode(err, "E_FILE_NOT_FOUND")) return null;
        throw err;
      }
      const entry = entries.find((e) => e.name === posix.basename(full));
      if (!entry) return null;
      if (entry.type !== "dir") return { type: entry.type === "file" ? "file" : "other", size: entry.size };
      const inside = await sandbox.files.list(full).catch(() => undefined);
      return { type: "dir", size: entry.size, ...(inside ? { entries: inside.length } : {}) };
    },
  };
}
