/**
 * Sandbox.files implemented by running small coreutils commands inside the sandbox.
 *
 * Why not plain host-side fs calls on the bound folders: the agent controls their
 * contents, and a symlink it plants (workspace/x -> /etc/shadow) would make a host
 * read follow it with the runtime's privileges. Running the operation inside the
 * sandbox resolves every path in the sandbox's own view and with its own uid, so
 * the worst a planted link can do is point at something the sandbox could read anyway.
 */
import { posix } from "node:path";
import type { ExecHandle, ExecOptions, FileEntry, SandboxFiles } from "./types.js";
import { SandboxError, diskFullError } from "./errors.js";
import { collect } from "./collect.js";

/** The writable roots a files call may touch; relative paths resolve against the first. */
export const FILE_ROOTS = ["/workspace", "/tmp"] as const;

type Exec = (argv: string[], opts?: ExecOptions) => ExecHandle;

/** Resolve `path` against /workspace and check it stays inside a writable root. */
export function resolveSandboxPath(path: string, opts: { allowRoot?: boolean } = {}): string {
  if (typeof path !== "string" || path.length === 0 || path.includes("\0")) {
    throw new SandboxError("E_FILE_PATH", "A file path must be a non-empty string without NUL bytes.");
  }
  const abs = posix.resolve(FILE_ROOTS[0], path);
  for (const root of FILE_ROOTS) {
    if (abs === root && opts.allowRoot) return abs;
    if (abs.startsWith(`${root}/`)) return abs;
  }
  throw new SandboxError("E_FILE_PATH", `The path ${JSON.stringify(path)} is outside the sandbox's writable areas; use a path under ${FILE_ROOTS.join(" or ")}.`, { details: { path } });
}

function failure(op: string, path: string, stderr: Buffer): SandboxError {
  const text = stderr.toString("utf8").trim();
  if (/No such file or directory/.test(text)) {
    return new SandboxError("E_FILE_NOT_FOUND", `${op} ${path}: no such file or directory in the sandbox.`, { details: { path } });
  }
  if (/No space left on device/.test(text)) return diskFullError(undefined, { path });
  return new SandboxError("E_FILE_IO", `${op} ${path} failed in the sandbox: ${text || "unknown error"}`, { details: { path } });
}

/** Files API over `exec`; `maxBytes` bounds one read or write. */
export function execFiles(exec: Exec, maxBytes: number): SandboxFiles {
  const tooLarge = (path: string, size: string): SandboxError =>
    new SandboxError("E_FILE_TOO_LARGE", `${path} is ${size}, over the sandbox's ${maxBytes}-byte file limit; raise maxFileBytes in the sandbox spec or move the data another way.`, { details: { path, maxBytes } });

  return {
    async read(path) {
      const p = resolveSandboxPath(path);
      const run = await collect(exec(["cat", "--", p]), { maxBytes });
      if (run.truncated) throw tooLarge(p, "larger");
      if (run.result.exitCode !== 0) throw failure("Reading", p, run.stderr);
      return new Uint8Array(run.stdout);
    },

    async write(path, data) {
      const p = resolveSandboxPath(path);
      const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
      if (bytes.byteLength > maxBytes) throw tooLarge(p, `${bytes.byteLength} bytes`);
      const script = 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"';
      const run = await collect(exec(["sh", "-c", script, "sh", p], { stdin: bytes }));
      if (run.result.exitCode !== 0) throw failure("Writing", p, run.stderr);
    },

    async list(path) {
      const p = resolveSandboxPath(path, { allowRoot: true });
      const run = await collect(exec(["find", p, "-mindepth", "1", "-maxdepth", "1", "-printf", "%y\\t%s\\t%f\\0"]));
      if (run.result.exitCode !== 0) throw failure("Listing", p, run.stderr);
      const kinds: Record<string, FileEntry["type"]> = { f: "file", d: "dir", l: "symlink" };
      return run.stdout
        .toString("utf8")
        .split("\0")
        .filter((line) => line.length > 0)
        .map((line) => {
          const [kind = "", size = "0", ...name] = line.split("\t");
          return { name: name.join("\t"), type: kinds[kind] ?? "other", size: Number(size) };
        })
        .sort((a, b) => a.name.localeCompare(b.name));
    },

    async remove(path, opts = {}) {
      const p = resolveSandboxPath(path);
      const check = await collect(exec(["test", "-e", p, "-o", "-L", p]));
      if (check.result.exitCode !== 0) throw failure("Removing", p, Buffer.from("No such file or directory"));
      const run = await collect(exec(opts.recursive ? ["rm", "-rf", "--", p] : ["rm", "-f", "--", p]));
      if (run.result.exitCode !== 0) throw failure("Removing", p, run.stderr);
    },
  };
}
