/**
 * The client of lg-mount (lg-mount.c): one helper process per LuminaGuard process,
 * started on the first scratch disk, answering mount/umount requests in order.
 * `call` resolves undefined when the helper is not built or cannot run, and the
 * caller then uses mount(8)/umount(8): slower, same result.
 *
 * The helper never keeps Node alive on its own: its handles are unref'd while no
 * request waits, and it exits at EOF on stdin, i.e. when this process ends.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const MOUNT_HELPER_BINARY = join("dist", "bin", "lg-mount");

/** A helper's answer: errno 0 on success. */
export interface HelperReply {
  errno: number;
  message: string;
}

/** Find dist/bin/lg-mount above this module (src/…, dist/…, a bundle chunk, the bench build). */
export function findMountHelper(from: string = dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, MOUNT_HELPER_BINARY);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** The wire form of a request: every field NUL-terminated. Pure, for the unit tests. */
export function encodeRequest(fields: string[]): Buffer {
  for (const f of fields) if (f.includes("\0")) throw new TypeError("a mount helper field cannot hold a NUL byte");
  return Buffer.from(fields.map((f) => `${f}\0`).join(""), "utf8");
}

/** One reply line ("0" or "ERRNO message"). Pure, for the unit tests. */
export function parseReply(line: string): HelperReply {
  const m = /^(\d+)(?: (.*))?$/.exec(line);
  if (!m) return { errno: -1, message: `unreadable reply from lg-mount: ${JSON.stringify(line)}` };
  return { errno: Number(m[1]), message: m[2] ?? "" };
}

class Helper {
  private readonly child: ChildProcess;
  private readonly waiting: ((r: HelperReply | undefined) => void)[] = [];
  private partial = "";
  dead = false;

  constructor(path: string) {
    this.child = spawn(path, [], { stdio: ["pipe", "pipe", "ignore"] });
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (chunk: string) => {
      const lines = (this.partial + chunk).split("\n");
      this.partial = lines.pop() ?? "";
      for (const line of lines) this.waiting.shift()?.(parseReply(line));
      this.idle();
    });
    // Not started (ENOENT, EACCES) or gone: whoever waits falls back to mount(8).
    const fail = (): void => {
      this.dead = true;
      for (const w of this.waiting.splice(0)) w(undefined);
    };
    this.child.on("error", fail);
    this.child.on("exit", fail);
    this.child.stdin!.on("error", fail);
    this.idle();
  }

  call(fields: string[]): Promise<HelperReply | undefined> {
    if (this.dead) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.setRef(true);
      this.child.stdin!.write(encodeRequest(fields));
    });
  }

  private idle(): void {
    if (this.waiting.length === 0) this.setRef(false);
  }

  private setRef(on: boolean): void {
    for (const h of [this.child, this.child.stdin, this.child.stdout] as { ref?(): void; unref?(): void }[]) {
      if (on) h.ref?.();
      else h.unref?.();
    }
  }
}

let helper: Helper | undefined;
let missing = false;

/** Ask the helper; undefined when there is none (not built, not startable): use mount(8) then. */
export function callMountHelper(fields: string[]): Promise<HelperReply | undefined> {
  if (missing) return Promise.resolve(undefined);
  if (!helper || helper.dead) {
    const path = findMountHelper();
    if (!path) {
      missing = true;
      return Promise.resolve(undefined);
    }
    helper = new Helper(path);
  }
  return helper.call(fields);
}
