/**
 * The agent's channel in a micro-VM: a virtio-serial port, found by name under
 * /sys/class/virtio-ports and opened as /dev/vportXpY.
 *
 * A port has no connections, only "is a host there": while none is, read()
 * returns 0 at once and write() blocks until one arrives (virtio_console.c).
 * We use both: after a host leaves (read returns 0 after we saw it), the agent
 * starts a new session and queues SYNC_MAGIC + hello; that write sits in the
 * kernel until the next host connects (a new QEMU restored from the snapshot, a
 * reconnect), so the new host's first bytes are our hello, and its completion
 * tells the read loop to read at once rather than at its slow idle poll.
 *
 * Reads and writes are blocking calls on libuv's thread pool (Node cannot wrap
 * a character device in a socket); each holds a pool thread while it waits.
 */
import { closeSync, openSync, readFileSync, readdirSync } from "node:fs";
import { read, write } from "node:fs";
import { join } from "node:path";
import { LOW_WATER_BYTES, type Link, type LinkHandler } from "./link.js";
import { errnoOf } from "./errors.js";

/** While no host is there we read this often (a finished write wakes us sooner). */
const IDLE_POLL_MS = 1000;
const OPEN_RETRY_MS = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** /dev/<vportXpY> of the port named `name`, or undefined when it is not there (yet). */
export function findPortDevice(name: string, sysDir = "/sys/class/virtio-ports"): string | undefined {
  let entries: string[];
  try {
    entries = readdirSync(sysDir);
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    try {
      if (readFileSync(join(sysDir, entry, "name"), "utf8").trim() === name) return `/dev/${entry}`;
    } catch {
      // a port without a name
    }
  }
  return undefined;
}

/** Open the port, waiting for it to appear and to stop refusing (ENXIO right after the module loads). */
async function openPort(name: string, log: (msg: string) => void): Promise<{ fd: number; device: string }> {
  let said = false;
  for (;;) {
    const device = findPortDevice(name);
    if (device) {
      try {
        return { fd: openSync(device, "r+"), device };
      } catch (err) {
        const code = errnoOf(err);
        if (code !== "ENXIO" && code !== "ENOENT" && code !== "EBUSY") throw err;
      }
    }
    if (!said) {
      log(`waiting for virtio-serial port ${name}`);
      said = true;
    }
    await sleep(OPEN_RETRY_MS);
  }
}

class PortLink implements Link {
  private queue: Buffer[] = [];
  private queued = 0;
  private writing = false;
  /** Set by discardQueued: the write in flight stops after its current piece. */
  private dropCurrent = false;
  private waiters: (() => void)[] = [];
  /** Called after each completed write (proof that a host is there). */
  onWritten: () => void = () => {};
  onFatal: (err: unknown) => void = () => {};

  constructor(private readonly fd: number) {}

  get backlog(): number {
    return this.queued;
  }

  write(buf: Buffer): void {
    if (buf.length === 0) return;
    this.queue.push(buf);
    this.queued += buf.length;
    if (!this.writing) void this.pump();
  }

  drained(): Promise<void> {
    if (this.queued <= LOW_WATER_BYTES) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  discardQueued(): void {
    if (this.queue.length === 0) return;
    this.dropCurrent = this.writing;
    // Keep the head while it is being written: pump() drops it after the call returns.
    const keep = this.writing ? this.queue.slice(0, 1) : [];
    this.queue = keep;
    this.queued = keep.reduce((n, b) => n + b.length, 0);
    this.wake();
  }

  close(): void {
    // The port stays open for the next host.
  }

  private wake(): void {
    if (this.queued > LOW_WATER_BYTES) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private async pump(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        let n: number;
        try {
          n = await new Promise<number>((resolve, reject) => write(this.fd, head, 0, head.length, null, (err, written) => (err ? reject(err) : resolve(written))));
        } catch (err) {
          if (errnoOf(err) === "EINTR" || errnoOf(err) === "EAGAIN") continue;
          this.onFatal(err);
          return;
        }
        if (this.dropCurrent) {
          this.dropCurrent = false;
          this.queue.shift();
          this.queued -= head.length;
        } else if (n >= head.length) {
          this.queue.shift();
          this.queued -= head.length;
        } else {
          this.queue[0] = head.subarray(n);
          this.queued -= n;
        }
        this.onWritten();
        this.wake();
      }
    } finally {
      this.writing = false;
    }
  }
}

/** Serve hosts on the named port forever; `onFatal` gets an error the port cannot recover from. */
export async function serveVirtioPort(name: string, handler: LinkHandler, log: (msg: string) => void): Promise<void> {
  const { fd, device } = await openPort(name, log);
  log(`serving on ${device} (${name})`);
  const link = new PortLink(fd);
  let hostSeen = false;
  let wakeRead: (() => void) | undefined;
  let fatal: unknown;
  link.onWritten = () => {
    hostSeen = true;
    wakeRead?.();
  };
  link.onFatal = (err) => {
    fatal = err;
    wakeRead?.();
  };
  handler.open(link);
  const buf = Buffer.allocUnsafe(64 * 1024);
  try {
    while (fatal === undefined) {
      const n = await new Promise<number>((resolve, reject) => read(fd, buf, 0, buf.length, null, (err, got) => (err ? reject(err) : resolve(got)))).catch((err: unknown) => {
        if (errnoOf(err) === "EINTR" || errnoOf(err) === "EAGAIN") return -1;
        throw err;
      });
      if (n > 0) {
        hostSeen = true;
        handler.data(link, Buffer.from(buf.subarray(0, n)));
        continue;
      }
      if (n === 0 && hostSeen) {
        // The host left: what we queued for it is stale; greet whoever comes next.
        hostSeen = false;
        link.discardQueued();
        handler.close(link);
        handler.open(link);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, IDLE_POLL_MS);
        function done(): void {
          clearTimeout(timer);
          wakeRead = undefined;
          resolve();
        }
        wakeRead = done;
      });
    }
    throw fatal;
  } finally {
    closeSync(fd);
  }
}
