/**
 * The host's end of the guest agent channel (src/guest/protocol.ts): requests
 * with ids and timeouts, commands with streamed output, files in pieces.
 *
 * The channel is a byte stream the caller connects (a Unix socket to QEMU's
 * virtio-serial chardev, a child's stdio). connect() starts a conversation with
 * SYNC_MAGIC + a hello request and ignores everything until the hello that
 * answers it: bytes a previous host left in the channel (a snapshot restore, a
 * write the guest had half done) are skipped rather than misread.
 *
 * Any failure of the channel (closed, garbled, a request unanswered within its
 * timeout, a greeting from another agent process: the agent restarted and lost
 * our commands and configuration) makes the client lost for good: every pending
 * call rejects with E_GUEST_LOST, `lost` resolves, and the caller replaces the VM.
 */
import type { Duplex } from "node:stream";
import { randomInt } from "node:crypto";
import {
  FILE_CHUNK_BYTES,
  FrameDecoder,
  PROTOCOL_VERSION,
  ProtocolError,
  SYNC_MAGIC,
  encodeFrame,
  parseAgentMessage,
  type AgentMessage,
  type Token,
  type WireError,
} from "../guest/protocol.js";
import { SandboxError, type SandboxErrorCode } from "./errors.js";
import type { FileEntry } from "./types.js";

export interface GuestHello {
  version: number;
  agentVersion: string;
  pid: number;
  bootId: string;
}

export interface GuestExit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  oom?: boolean;
  pidsLimit?: boolean;
}

/** A command running in the guest. */
export interface GuestProcess {
  readonly stdout: AsyncIterable<Uint8Array>;
  readonly stderr: AsyncIterable<Uint8Array>;
  write(data: Uint8Array | string): Promise<void>;
  closeStdin(): void;
  kill(signal: NodeJS.Signals): void;
  /** Rejects with E_GUEST_LOST if the channel dies first. */
  readonly exited: Promise<GuestExit>;
}

export interface ConnectOptions {
  /** How long to wait for the agent's hello (default 10 s). */
  helloTimeoutMs?: number;
  /** How long any request may stay unanswered before the client is lost (default 30 s). */
  requestTimeoutMs?: number;
}

/** Wire codes the host knows; anything else from the agent is a protocol error. */
const KNOWN_CODES = new Set<SandboxErrorCode>([
  "E_EXEC_INVALID", "E_SANDBOX_START", "E_SANDBOX_DESTROYED", "E_FILE_NOT_FOUND", "E_FILE_TOO_LARGE", "E_FILE_PATH", "E_FILE_IO", "E_CGROUP", "E_GUEST_PROTOCOL",
]);

function fromWire(err: WireError): SandboxError {
  const code = KNOWN_CODES.has(err.code as SandboxErrorCode) ? (err.code as SandboxErrorCode) : "E_GUEST_PROTOCOL";
  return new SandboxError(code, err.message, { details: { guestCode: err.code } });
}

/**
 * Output of a command: an async iterable that several loops may consume one
 * after another (one reads a chunk with next(), a later for-await gets the rest);
 * leaving a loop early does not end or drop anything.
 */
class ChunkStream implements AsyncIterable<Uint8Array> {
  private readonly chunks: Uint8Array[] = [];
  private ended = false;
  private waiters: (() => void)[] = [];

  push(chunk: Uint8Array): void {
    if (this.ended) return;
    this.chunks.push(chunk);
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: async (): Promise<IteratorResult<Uint8Array>> => {
        while (this.chunks.length === 0 && !this.ended) await new Promise<void>((r) => this.waiters.push(r));
        const value = this.chunks.shift();
        return value ? { done: false, value } : { done: true, value: undefined };
      },
      return: async (): Promise<IteratorResult<Uint8Array>> => ({ done: true, value: undefined }),
    };
  }
}

interface Pending {
  type: string;
  resolve(msg: AgentMessage & { type: "result" }, body: Buffer): void;
  reject(err: SandboxError): void;
  timer: NodeJS.Timeout | undefined;
  /** Read contents arriving in pieces. */
  pieces?: Buffer[];
  /** Slow by nature (stdin waits for the command to read): on timeout, ping before giving up. */
  patient?: boolean;
}

interface ProcState {
  stdout: ChunkStream;
  stderr: ChunkStream;
  resolve(exit: GuestExit): void;
  reject(err: SandboxError): void;
}

const textEncoder = new TextEncoder();

export class GuestClient {
  private readonly decoder = new FrameDecoder({ awaitSync: true });
  private readonly pending = new Map<number, Pending>();
  private readonly procs = new Map<string, ProcState>();
  // Random bases: answers meant for an earlier host of the same agent never match ours.
  private nextId = randomInt(1, 2 ** 30);
  private readonly execBase = randomInt(2 ** 30).toString(36);
  private execSeq = 0;
  private helloId = 0;
  private helloWaiter: { resolve(h: GuestHello): void; reject(e: SandboxError): void } | undefined;
  private lostError: SandboxError | undefined;
  private resolveLost!: (err: SandboxError) => void;
  private readonly requestTimeoutMs: number;
  private helloInfo: GuestHello | undefined;
  /** Resolves (never rejects) with an E_GUEST_LOST error when the channel dies. */
  readonly lost: Promise<SandboxError>;

  private constructor(
    private readonly stream: Duplex,
    opts: ConnectOptions,
  ) {
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.lost = new Promise((r) => (this.resolveLost = r));
    stream.on("data", (chunk: Buffer) => this.receive(chunk));
    stream.on("end", () => this.markLost("the channel to the guest agent was closed"));
    stream.on("close", () => this.markLost("the channel to the guest agent was closed"));
    stream.on("error", (err) => this.markLost(`the channel to the guest agent failed: ${err.message}`, err));
  }

  /** What the agent said in its hello (set once connect() resolved). */
  get hello(): GuestHello {
    return this.helloInfo!;
  }

  /** Start a conversation on `stream` and wait for the agent's hello (E_GUEST_PROTOCOL on a version mismatch). */
  static async connect(stream: Duplex, opts: ConnectOptions = {}): Promise<GuestClient> {
    const client = new GuestClient(stream, opts);
    const timeoutMs = opts.helloTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      client.helloInfo = await new Promise<GuestHello>((resolve, reject) => {
        client.helloWaiter = { resolve, reject };
        timer = setTimeout(() => reject(new SandboxError("E_GUEST_LOST", `The guest agent did not say hello within ${timeoutMs} ms; the VM may not have booted or its agent is not running. Check the VM's console log.`)), timeoutMs);
        client.helloId = client.nextId++;
        stream.write(SYNC_MAGIC);
        stream.write(encodeFrame({ type: "hello", id: client.helloId, version: PROTOCOL_VERSION }));
        if (client.lostError) reject(client.lostError);
      });
    } catch (err) {
      client.helloWaiter = undefined;
      client.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    client.helloWaiter = undefined;
    return client;
  }

  /** Round trip time in ms. */
  async ping(timeoutMs?: number): Promise<number> {
    const started = performance.now();
    await this.request({ type: "ping" }, undefined, { timeoutMs });
    return performance.now() - started;
  }

  /** Fresh entropy, the time and a hostname for a VM restored from a snapshot. */
  async reseed(o: { entropy: Uint8Array; timeMs: number; hostname: string }): Promise<void> {
    await this.request({ type: "reseed", timeMs: o.timeMs, hostname: o.hostname }, o.entropy);
  }

  /** How commands run from now on: confinement, uid/gid, seccomp program, limits. */
  async configure(o: { confine: "bwrap" | "none"; uid: number; gid: number; seccomp?: Uint8Array; limits?: { memoryBytes: number; pids: number }; unshareNet?: boolean; spawner?: boolean }): Promise<void> {
    const header = { type: "configure", confine: o.confine, uid: o.uid, gid: o.gid, ...(o.limits ? { limits: o.limits } : {}), ...(o.unshareNet === undefined ? {} : { unshareNet: o.unshareNet }), ...(o.spawner === undefined ? {} : { spawner: o.spawner }) };
    await this.request(header, o.seccomp);
  }

  /**
   * Micro-VMs with network: the guest's NIC gets `address/prefixLength` and a
   * default route via `gateway`, and /etc/resolv.conf becomes `resolvConf`.
   */
  async network(o: { address: string; prefixLength: number; gateway: string; resolvConf: string }): Promise<void> {
    await this.request({ type: "network", address: o.address, prefixLength: o.prefixLength, gateway: o.gateway, resolvConf: o.resolvConf });
  }

  /** Start a command; its output streams and exit come through the handle. */
  exec(argv: string[], o: { env: Record<string, string>; cwd: string; stdin: boolean }): GuestProcess {
    const execId = `${this.execBase}-${++this.execSeq}`;
    const stdout = new ChunkStream();
    const stderr = new ChunkStream();
    let stdinOpen = o.stdin;
    let done = false;
    const exited = new Promise<GuestExit>((resolve, reject) => {
      const finish = (): void => {
        done = true;
        stdinOpen = false;
        stdout.end();
        stderr.end();
        this.procs.delete(execId);
      };
      this.procs.set(execId, {
        stdout,
        stderr,
        resolve: (exit) => {
          finish();
          resolve(exit);
        },
        reject: (err) => {
          finish();
          reject(err);
        },
      });
    });
    // Callers that only kill and never wait must not see an unhandled rejection.
    exited.catch(() => {});
    this.request({ type: "exec", execId, argv, env: o.env, cwd: o.cwd, stdin: o.stdin }).catch((err: SandboxError) => this.procs.get(execId)?.reject(err));

    return {
      stdout,
      stderr,
      exited,
      write: async (data) => {
        if (!stdinOpen) throw new SandboxError("E_SANDBOX_DESTROYED", "The command's stdin is closed; it has exited or stdin was closed or not requested.");
        const bytes = typeof data === "string" ? textEncoder.encode(data) : data;
        for (let at = 0; at < bytes.byteLength; at += FILE_CHUNK_BYTES) {
          await this.request({ type: "stdin", execId }, bytes.subarray(at, at + FILE_CHUNK_BYTES), { patient: true });
        }
      },
      closeStdin: () => {
        if (!stdinOpen) return;
        stdinOpen = false;
        this.request({ type: "stdin-eof", execId }).catch(() => {});
      },
      kill: (signal) => {
        if (done || this.lostError) return;
        this.request({ type: "signal", execId, signal }).catch(() => {});
      },
    };
  }

  /** A file's contents (E_FILE_TOO_LARGE over maxBytes, E_FILE_NOT_FOUND, E_FILE_PATH, E_FILE_IO). */
  async readFile(path: string, maxBytes: number): Promise<Uint8Array> {
    const { body } = await this.request({ type: "read", path, maxBytes }, undefined, { pieces: true });
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  }

  /** Create or replace a file; contents over one frame go in pieces. */
  async writeFile(path: string, data: Uint8Array, maxBytes: number): Promise<void> {
    await this.request({ type: "write", path, maxBytes }, data, { split: true });
  }

  async list(path: string): Promise<FileEntry[]> {
    const { msg } = await this.request({ type: "list", path });
    return (msg.ok && msg.entries) || [];
  }

  async remove(path: string, recursive: boolean): Promise<void> {
    await this.request({ type: "remove", path, recursive });
  }

  /** Every process in the guest (the host cannot see them). */
  async processes(): Promise<{ pid: number; cmdline: string }[]> {
    const { msg } = await this.request({ type: "processes" });
    return (msg.ok && msg.processes) || [];
  }

  /**
   * The agent is known to be gone by other means (QEMU saw the guest close the
   * agent's port): fail everything now with E_GUEST_LOST saying `why`, and drop
   * the channel. Whatever a restarted agent will say there is not for this client.
   */
  abandon(why: string): void {
    this.markLost(why);
    this.stream.destroy();
  }

  /** Drop the channel; pending calls reject with E_GUEST_LOST. Safe to call twice. */
  close(): void {
    this.markLost("the channel to the guest agent was closed by the host");
    this.stream.destroy();
  }

  // ---- internals ----

  private request(
    header: { type: string } & Record<string, unknown>,
    body?: Uint8Array,
    o: { timeoutMs?: number | undefined; pieces?: boolean; patient?: boolean; split?: boolean } = {},
  ): Promise<{ msg: AgentMessage & { type: "result" }; body: Buffer }> {
    if (this.lostError) return Promise.reject(this.lostError);
    const id = this.nextId++;
    const timeoutMs = o.timeoutMs ?? this.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const p: Pending = {
        type: header.type,
        resolve: (msg, b) => resolve({ msg, body: b }),
        reject,
        timer: undefined,
        ...(o.pieces ? { pieces: [] } : {}),
        ...(o.patient ? { patient: true } : {}),
      };
      this.pending.set(id, p);
      const arm = (): void => {
        if (this.pending.has(id)) p.timer = this.armTimer(id, p, timeoutMs);
      };
      try {
        if (o.split && body && body.byteLength > FILE_CHUNK_BYTES) {
          void this.sendPieces(id, header, body).then(arm, (err: unknown) => this.markLost(`sending to the guest agent failed: ${(err as Error).message}`, err));
          return;
        }
        this.stream.write(encodeFrame({ ...header, id }, body));
        arm();
      } catch (err) {
        this.pending.delete(id);
        reject(err instanceof ProtocolError ? new SandboxError("E_GUEST_PROTOCOL", err.message, { cause: err }) : err);
      }
    });
  }

  /** First frame with `more`, then `data` frames; waits for the stream between pieces so nothing piles up. */
  private async sendPieces(id: number, header: Record<string, unknown>, body: Uint8Array): Promise<void> {
    for (let at = 0; at < body.byteLength; at += FILE_CHUNK_BYTES) {
      if (this.lostError) return;
      const piece = body.subarray(at, at + FILE_CHUNK_BYTES);
      const more = at + FILE_CHUNK_BYTES < body.byteLength;
      const frame = at === 0 ? encodeFrame({ ...header, id, more }, piece) : encodeFrame({ type: "data", id, more }, piece);
      if (!this.stream.write(frame)) {
        await new Promise<void>((r) => {
          const done = (): void => {
            this.stream.off("drain", done);
            this.stream.off("close", done);
            r();
          };
          this.stream.on("drain", done);
          this.stream.on("close", done);
        });
      }
    }
  }

  private armTimer(id: number, p: Pending, timeoutMs: number): NodeJS.Timeout {
    return setTimeout(() => {
      if (!this.pending.has(id)) return;
      if (p.patient) {
        // Still waiting on the command, or is the agent gone? A ping tells.
        this.request({ type: "ping" }).then(
          () => {
            if (this.pending.has(id)) p.timer = this.armTimer(id, p, timeoutMs);
          },
          () => {},
        );
        return;
      }
      this.markLost(`the guest agent did not answer a ${p.type} request within ${timeoutMs} ms`);
    }, timeoutMs);
  }

  private receive(chunk: Buffer): void {
    let tokens: Token[];
    try {
      tokens = this.decoder.push(chunk);
    } catch (err) {
      if (this.helloWaiter) {
        // Leftovers of an earlier conversation: skip to the next SYNC_MAGIC, which may be in this very chunk.
        this.decoder.resync();
        if (chunk.byteLength > 0) this.receive(Buffer.alloc(0));
        return;
      }
      this.markLost(`the guest agent sent a garbled frame (${(err as Error).message})`, err);
      return;
    }
    for (const t of tokens) {
      if (this.lostError) return;
      if (t.kind === "frame") this.dispatch(t.frame.header, t.frame.body);
    }
  }

  private dispatch(header: { type: string } & Record<string, unknown>, body: Buffer): void {
    let msg: AgentMessage;
    try {
      msg = parseAgentMessage(header);
    } catch (err) {
      if (this.helloWaiter) return;
      this.markLost(`the guest agent sent a bad message (${(err as Error).message})`, err);
      return;
    }
    if (this.helloWaiter) {
      this.beforeHello(msg);
      return;
    }
    switch (msg.type) {
      case "hello":
        // Our own hello again, or a stale greeting: fine. Another agent process: it restarted and lost our commands.
        if (msg.pid !== this.hello.pid || msg.bootId !== this.hello.bootId) this.markLost(`the guest agent restarted (pid ${this.hello.pid} became ${msg.pid})`);
        return;
      case "result": {
        const p = this.pending.get(msg.id);
        if (!p) return;
        if (!msg.ok) return this.settle(msg.id, p, fromWire(msg.error));
        if (p.pieces && msg.more) {
          p.pieces.push(body);
          this.rearm(msg.id, p);
          return;
        }
        return this.settle(msg.id, p, undefined, msg, p.pieces ? Buffer.concat([...p.pieces, body]) : body);
      }
      case "data": {
        const p = this.pending.get(msg.id);
        if (!p?.pieces) return;
        p.pieces.push(body);
        if (msg.more) return this.rearm(msg.id, p);
        return this.settle(msg.id, p, undefined, { type: "result", id: msg.id, ok: true }, Buffer.concat(p.pieces));
      }
      case "stdout":
      case "stderr":
        this.procs.get(msg.execId)?.[msg.type].push(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
        return;
      case "exit":
        this.procs.get(msg.execId)?.resolve({
          exitCode: msg.exitCode,
          signal: msg.signal as NodeJS.Signals | null,
          ...(msg.oom ? { oom: true } : {}),
          ...(msg.pidsLimit ? { pidsLimit: true } : {}),
        });
        return;
      case "error": {
        const err = new SandboxError("E_GUEST_PROTOCOL", `The guest agent refused a message: ${msg.message}`, { details: { guestCode: msg.code } });
        const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
        if (p) return this.settle(msg.id!, p, err);
        // Without an id the agent lost the framing of our frames: the channel is unusable.
        this.markLost(`the guest agent could not read our frames (${msg.message})`, err);
        return;
      }
    }
  }

  /** Until our hello is answered, only that answer (or a refusal of it) counts. */
  private beforeHello(msg: AgentMessage): void {
    const w = this.helloWaiter!;
    if (msg.type === "hello" && msg.version !== PROTOCOL_VERSION) {
      w.reject(new SandboxError("E_GUEST_PROTOCOL", `The guest agent speaks protocol version ${msg.version} (agent ${msg.agentVersion}); this LuminaGuard speaks ${PROTOCOL_VERSION}. Rebuild the guest image: luminaguard image build --force.`, { details: { agentVersion: msg.agentVersion, version: msg.version } }));
      return;
    }
    if (msg.type === "hello" && msg.id === this.helloId) {
      w.resolve({ version: msg.version, agentVersion: msg.agentVersion, pid: msg.pid, bootId: msg.bootId });
      return;
    }
    if (msg.type === "error" && msg.id === this.helloId) {
      w.reject(new SandboxError("E_GUEST_PROTOCOL", `The guest agent refused our hello: ${msg.message}`));
    }
  }

  private rearm(id: number, p: Pending): void {
    clearTimeout(p.timer);
    p.timer = this.armTimer(id, p, this.requestTimeoutMs);
  }

  private settle(id: number, p: Pending, err: SandboxError | undefined, msg?: AgentMessage & { type: "result" }, body?: Buffer): void {
    clearTimeout(p.timer);
    this.pending.delete(id);
    if (err) p.reject(err);
    else p.resolve(msg!, body ?? Buffer.alloc(0));
  }

  private markLost(why: string, cause?: unknown): void {
    if (this.lostError) return;
    const err = new SandboxError("E_GUEST_LOST", `The guest agent stopped answering (${why}); the VM was replaced, retry the call.`, cause === undefined ? {} : { cause });
    this.lostError = err;
    this.helloWaiter?.reject(err);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err);
    }
    for (const proc of this.procs.values()) proc.reject(err);
    this.resolveLost(err);
  }
}
