/**
 * The agent's view of a channel to the host, whatever carries it (virtio-serial
 * port, Unix socket, stdin/stdout), and the two stream-based carriers. A link
 * only moves bytes; the agent (dispatcher.ts) frames them.
 */
import { createServer, type Server, type Socket } from "node:net";
import { rmSync } from "node:fs";
import type { Readable, Writable } from "node:stream";

/** Output queued above this many bytes pauses the commands' pipes. */
export const HIGH_WATER_BYTES = 1024 * 1024;
/** ...until the queue is below this again. */
export const LOW_WATER_BYTES = 256 * 1024;

export interface Link {
  /** Queue bytes for the host; never blocks. */
  write(buf: Buffer): void;
  /** Bytes queued that the kernel has not taken yet. */
  readonly backlog: number;
  /** Resolves once the backlog is at most LOW_WATER_BYTES (or the link is gone). */
  drained(): Promise<void>;
  /** Drop queued output meant for a host that has left. */
  discardQueued(): void;
  close(): void;
}

/** What a carrier reports: a host came, sent bytes, left. */
export interface LinkHandler {
  open(link: Link): void;
  data(link: Link, chunk: Buffer): void;
  close(link: Link): void;
}

/** A link over a Node stream pair (a socket, or stdin/stdout). */
class StreamLink implements Link {
  private closed = false;

  constructor(
    private readonly out: Writable,
    private readonly onClose: () => void,
  ) {
    out.on("error", () => this.close());
  }

  write(buf: Buffer): void {
    if (!this.closed) this.out.write(buf);
  }

  get backlog(): number {
    return this.out.writableLength;
  }

  drained(): Promise<void> {
    if (this.closed || this.backlog <= LOW_WATER_BYTES) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.out.off("drain", done);
        this.out.off("close", done);
        resolve();
      };
      this.out.on("drain", done);
      this.out.on("close", done);
    });
  }

  discardQueued(): void {
    // A stream's own buffer cannot be trimmed; a stream link is never reused for another host.
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
  }
}

/** Frames over stdin/stdout; the host leaving (stdin EOF) ends the agent via `onEnd`. */
export function serveStdio(handler: LinkHandler, onEnd: () => void): void {
  const input: Readable = process.stdin;
  const link = new StreamLink(process.stdout, () => {
    handler.close(link);
    onEnd();
  });
  input.on("data", (chunk: Buffer) => handler.data(link, chunk));
  input.on("end", () => link.close());
  input.on("error", () => link.close());
  handler.open(link);
}

/** Frames over a Unix socket; the newest connection is the host, an older one is closed. */
export function serveUnixSocket(path: string, handler: LinkHandler): Promise<Server> {
  rmSync(path, { force: true });
  const server = createServer((sock: Socket) => {
    const link: StreamLink = new StreamLink(sock, () => {
      sock.destroy();
      handler.close(link);
    });
    sock.on("data", (chunk: Buffer) => handler.data(link, chunk));
    sock.on("close", () => link.close());
    sock.on("error", () => link.close());
    handler.open(link);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve(server));
  });
}
