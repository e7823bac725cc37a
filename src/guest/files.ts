/**
 * File requests, done by the agent itself (it runs as root in the guest) on the
 * two writable areas, /workspace and /tmp. The host checked the path already,
 * but the guest's commands control what is in those folders, so every path is
 * checked again here: absolute, under an area, and after resolving symlinks
 * still under an area; the last component is opened with O_NOFOLLOW (and
 * O_NONBLOCK, so a planted FIFO cannot hang the agent).
 *
 * Remaining race: between the realpath check and the open, a command running at
 * the same time can swap a folder on the path for a symlink; O_NOFOLLOW guards
 * only the last component. Closing it needs openat2(RESOLVE_BENEATH), which Node
 * does not expose. Commands run as an unprivileged uid in a mount namespace that
 * sees only these areas as writable, so the window matters only while a command
 * runs concurrently with a files call.
 */
import { constants } from "node:fs";
import { lstat, mkdir, open, opendir, realpath, rm, unlink, chown } from "node:fs/promises";
import { posix } from "node:path";
import type { FileEntryWire, FileType } from "./protocol.js";
import { AgentError, errnoOf } from "./errors.js";

/** The guest folders behind the sandbox paths /workspace and /tmp. */
export interface FileAreas {
  workspace: string;
  tmp: string;
}

/** Who should own what the agent creates (the commands' uid), or undefined to keep root. */
export type OwnerFn = () => { uid: number; gid: number } | undefined;

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;

interface Mapped {
  /** The sandbox path, normalised. */
  path: string;
  /** The same path in the guest's file system (not resolved). */
  local: string;
  isRoot: boolean;
}

export class GuestFiles {
  constructor(
    private readonly areas: FileAreas,
    private readonly owner: OwnerFn,
  ) {}

  /** The whole file, at most maxBytes (E_FILE_TOO_LARGE beyond). */
  async read(path: string, maxBytes: number): Promise<Buffer> {
    const m = this.map(path, false);
    const real = await this.resolveInside(m.local, m.path);
    const fh = await open(real, O_RDONLY | O_NOFOLLOW | O_NONBLOCK).catch((e: unknown) => {
      throw fileError(e, "Reading", m.path);
    });
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw new AgentError("E_FILE_IO", `Reading ${m.path}: it is a folder; list it instead.`);
      if (!st.isFile()) throw new AgentError("E_FILE_IO", `Reading ${m.path}: not a regular file.`);
      if (st.size > maxBytes) throw tooLarge(m.path, maxBytes);
      // Read one byte past the limit: the file may grow while we read.
      const buf = Buffer.allocUnsafe(Math.min(maxBytes, st.size) + 1);
      let got = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, null);
        if (bytesRead === 0) break;
        got += bytesRead;
        if (got === buf.length) {
          if (got > maxBytes) throw tooLarge(m.path, maxBytes);
          break;
        }
      }
      return buf.subarray(0, got);
    } catch (err) {
      throw fileError(err, "Reading", m.path);
    } finally {
      await fh.close();
    }
  }

  /** Create or replace a file (parents are created), owned by the commands' user. */
  async write(path: string, data: Uint8Array, maxBytes: number): Promise<void> {
    const m = this.map(path, false);
    if (data.byteLength > maxBytes) throw tooLarge(m.path, maxBytes);
    const parent = await this.ensureDir(posix.dirname(m.local), m.path);
    let target = posix.join(parent, posix.basename(m.local));
    const existing = await lstat(target).catch(() => undefined);
    if (existing?.isSymbolicLink()) target = await this.resolveInside(target, m.path);
    let created = true;
    let fh = await open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, 0o644).catch((e: unknown) => {
      if (errnoOf(e) === "EEXIST") return undefined;
      throw fileError(e, "Writing", m.path);
    });
    if (!fh) {
      created = false;
      fh = await open(target, O_WRONLY | O_NOFOLLOW | O_NONBLOCK).catch((e: unknown) => {
        throw fileError(e, "Writing", m.path);
      });
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new AgentError("E_FILE_IO", `Writing ${m.path}: not a regular file.`);
      await fh.truncate(0);
      const own = this.owner();
      if (created && own) await fh.chown(own.uid, own.gid);
      let done = 0;
      while (done < data.byteLength) {
        const { bytesWritten } = await fh.write(data, done, data.byteLength - done, null);
        done += bytesWritten;
      }
    } catch (err) {
      throw fileError(err, "Writing", m.path);
    } finally {
      await fh.close();
    }
  }

  /** Entries of a folder, sorted by name; symlinks are reported as such, not followed. */
  async list(path: string): Promise<FileEntryWire[]> {
    const m = this.map(path, true);
    const real = await this.resolveInside(m.local, m.path);
    const out: FileEntryWire[] = [];
    try {
      const dir = await opendir(real);
      for await (const ent of dir) {
        const st = await lstat(posix.join(real, ent.name)).catch(() => undefined);
        if (!st) continue; // removed while we listed
        out.push({ name: ent.name, type: typeOf(st), size: st.size });
      }
    } catch (err) {
      throw fileError(err, "Listing", m.path);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Remove a file, a symlink (not its target) or, with recursive, a folder tree. */
  async remove(path: string, recursive: boolean): Promise<void> {
    const m = this.map(path, false);
    const parent = await this.resolveInside(posix.dirname(m.local), m.path);
    const target = posix.join(parent, posix.basename(m.local));
    if ((await this.areaRoots()).includes(target)) throw new AgentError("E_FILE_PATH", `Removing ${m.path}: that is a writable area's root, which stays.`);
    try {
      const st = await lstat(target);
      if (st.isDirectory()) {
        if (!recursive) throw new AgentError("E_FILE_IO", `Removing ${m.path}: it is a folder; pass recursive to remove it with its contents.`);
        // rm never follows symlinks inside the tree.
        await rm(target, { recursive: true, force: false, maxRetries: 2 });
      } else {
        await unlink(target);
      }
    } catch (err) {
      throw fileError(err, "Removing", m.path);
    }
  }

  /** Check the sandbox path and map it to the guest path. */
  private map(path: string, allowRoot: boolean): Mapped {
    if (typeof path !== "string" || !path.startsWith("/") || path.includes("\0")) {
      throw new AgentError("E_FILE_PATH", `The path ${JSON.stringify(path)} must be absolute, under /workspace or /tmp.`);
    }
    const norm = posix.normalize(path).replace(/(.)\/+$/, "$1");
    for (const [area, local] of [["/workspace", this.areas.workspace], ["/tmp", this.areas.tmp]] as const) {
      if (norm === area) {
        if (!allowRoot) break;
        return { path: norm, local, isRoot: true };
      }
      if (norm.startsWith(`${area}/`)) return { path: norm, local: posix.join(local, norm.slice(area.length + 1)), isRoot: false };
    }
    throw new AgentError("E_FILE_PATH", `The path ${JSON.stringify(path)} is outside the sandbox's writable areas; use a path under /workspace or /tmp.`);
  }

  private async areaRoots(): Promise<string[]> {
    return Promise.all([realpath(this.areas.workspace), realpath(this.areas.tmp)]);
  }

  /** realpath of `local`, which must stay inside an area (E_FILE_PATH) and exist (E_FILE_NOT_FOUND). */
  private async resolveInside(local: string, shown: string): Promise<string> {
    let real: string;
    try {
      real = await realpath(local);
    } catch (err) {
      throw fileError(err, "Opening", shown);
    }
    const roots = await this.areaRoots();
    if (!roots.some((r) => real === r || real.startsWith(`${r}/`))) {
      throw new AgentError("E_FILE_PATH", `The path ${shown} leads (through a symlink) outside the sandbox's writable areas; refused.`);
    }
    return real;
  }

  /** mkdir -p inside an area: each missing folder is created (owned by the commands' user); symlinks must stay inside. */
  private async ensureDir(local: string, shown: string): Promise<string> {
    const area = [this.areas.workspace, this.areas.tmp].find((a) => local === a || local.startsWith(`${a}/`));
    if (!area) throw new AgentError("E_FILE_PATH", `The path ${shown} is outside the sandbox's writable areas.`);
    const parts = local === area ? [] : local.slice(area.length + 1).split("/");
    let cur = area;
    for (const part of parts) {
      cur = await this.resolveInside(cur, shown);
      const next = posix.join(cur, part);
      const st = await lstat(next).catch(() => undefined);
      if (!st) {
        try {
          await mkdir(next, { mode: 0o755 });
          const own = this.owner();
          if (own) await chown(next, own.uid, own.gid);
        } catch (err) {
          if (errnoOf(err) !== "EEXIST") throw fileError(err, "Writing", shown);
        }
      } else if (!st.isDirectory() && !st.isSymbolicLink()) {
        throw new AgentError("E_FILE_IO", `Writing ${shown}: ${posix.basename(next)} on its path is not a folder.`);
      }
      cur = next;
    }
    return this.resolveInside(cur, shown);
  }
}

function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): FileType {
  if (st.isSymbolicLink()) return "symlink";
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  return "other";
}

function tooLarge(path: string, maxBytes: number): AgentError {
  return new AgentError("E_FILE_TOO_LARGE", `${path} is larger than the sandbox's ${maxBytes}-byte file limit; raise maxFileBytes in the sandbox spec or move the data another way.`);
}

/** Map an fs error to the host's file error codes. */
function fileError(err: unknown, op: string, path: string): AgentError {
  if (err instanceof AgentError) return err;
  const code = errnoOf(err);
  if (code === "ENOENT") return new AgentError("E_FILE_NOT_FOUND", `${op} ${path}: no such file or directory in the sandbox.`);
  if (code === "ELOOP") return new AgentError("E_FILE_PATH", `${op} ${path}: it is a symlink that was swapped in while we looked; refused.`);
  if (code === "EISDIR") return new AgentError("E_FILE_IO", `${op} ${path}: it is a folder.`);
  if (code === "ENOTDIR") return new AgentError("E_FILE_IO", `${op} ${path}: a part of the path is not a folder.`);
  const message = err instanceof Error ? err.message : String(err);
  return new AgentError("E_FILE_IO", `${op} ${path} failed in the sandbox: ${message}`);
}
