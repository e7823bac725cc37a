/**
 * A client for QEMU's machine protocol (QMP) over a Unix socket.
 *
 * QMP is small enough that a library would cost more than it saves: JSON
 * objects separated by CRLF, a greeting, `qmp_capabilities`, then commands
 * whose replies carry the `id` we sent, interleaved with asynchronous events.
 * Written here so every failure is a typed error: a refused command keeps
 * QEMU's error class and text, an unanswered one times out on its own, and a
 * lost connection rejects everything still waiting.
 */
import { EventEmitter } from "node:events";
import { connect as netConnect, type Socket } from "node:net";
import { SandboxError, type SandboxErrorCode } from "../errors.js";

/** What QEMU says first on a new QMP connection. */
export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  capabilities: string[];
}

/** An asynchronous event (STOP, RESUME, SHUTDOWN, MIGRATION, ...). */
export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  /** When QEMU emitted it, in host wall-clock time. */
  timestamp: { seconds: number; microseconds: number };
}

export interface QmpConnectOptions {
  /** Budget for connecting, the greeting and capability negotiation (default 5 s). */
  timeoutMs?: number;
  /** Keep retrying while the socket does not exist or refuses (QEMU still starting). Default false. */
  waitForSocket?: boolean;
  /** Default timeout of every command of this client (default 10 s). */
  commandTimeoutMs?: number;
  /** Abandon connecting (e.g. the QEMU process exited meanwhile). */
  signal?: AbortSignal;
}

export interface QmpCommandOptions {
  /** Overrides the client's default command timeout. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A QMP failure: the connection, the protocol, a refused command or a timeout. */
export class QmpError extends SandboxError {
  /** QEMU's error class ("GenericError", "CommandNotFound", ...), for E_QMP_COMMAND. */
  readonly qmpClass: string | undefined;
  /** QEMU's own error text, for E_QMP_COMMAND. */
  readonly qmpDesc: string | undefined;
  /** The command that failed, when one did. */
  readonly command: string | undefined;

  constructor(
    code: Extract<SandboxErrorCode, "E_QMP" | "E_QMP_COMMAND" | "E_QMP_TIMEOUT">,
    message: string,
    options: { cause?: unknown; command?: string; qmpClass?: string; qmpDesc?: string } = {},
  ) {
    const details: Record<string, unknown> = {};
    if (options.command !== undefined) details.command = options.command;
    if (options.qmpClass !== undefined) details.qmpClass = options.qmpClass;
    if (options.qmpDesc !== undefined) details.qmpDesc = options.qmpDesc;
    super(code, message, { cause: options.cause, details });
    this.qmpClass = options.qmpClass;
    this.qmpDesc = options.qmpDesc;
    this.command = options.command;
  }
}

/** A line longer than this is not QMP (QEMU's largest replies are a few hundred KB). */
const MAX_LINE_CHARS = 16 * 1024 * 1024;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
/** How often a connect is retried while QEMU has not created its socket yet. */
const RETRY_STEP_MS = 2;

interface Pending {
  command: string;
  resolve(value: unknown): void;
  reject(err: QmpError): void;
  cleanup(): void;
}

type ClientEvents = { event: [QmpEvent]; close: [QmpError | undefined] };

/** One QMP connection, ready for commands (capabilities negotiated). */
export class QmpClient extends EventEmitter<ClientEvents> {
  /** Resolves when the connection ends: undefined after close(), else the error that ended it. */
  readonly closed: Promise<QmpError | undefined>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buffer = "";
  private ended: QmpError | null | undefined;
  private resolveClosed!: (reason: QmpError | undefined) => void;
  private greetingWaiter: { resolve(g: QmpGreeting): void; reject(e: QmpError): void } | undefined;
  private greetingValue: QmpGreeting | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly path: string,
    private readonly commandTimeoutMs: number,
  ) {
    super();
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("error", (err) => this.fail(new QmpError("E_QMP", `The QMP connection to QEMU (${path}) failed: ${err.message}.`, { cause: err })));
    socket.on("close", () => this.fail(new QmpError("E_QMP", `QEMU closed its QMP connection (${path}); the QEMU process has probably exited.`)));
  }

  /** Connect to QEMU's QMP socket, read the greeting and negotiate capabilities. */
  static async connect(path: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const deadline = performance.now() + timeoutMs;
    const socket = await openSocket(path, deadline, opts);
    const client = new QmpClient(socket, path, opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    try {
      client.greetingValue = await client.awaitGreeting(Math.max(1, deadline - performance.now()), opts.signal);
      await client.execute("qmp_capabilities", undefined, { timeoutMs: Math.max(1, deadline - performance.now()), signal: opts.signal });
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** QEMU's greeting: its version and the capabilities it offered. */
  get greeting(): QmpGreeting {
    return this.greetingValue!;
  }

  /** True once the connection has ended (close(), QEMU exit, protocol error). */
  get isClosed(): boolean {
    return this.ended !== undefined;
  }

  /**
   * Run one command and return its `return` value. Rejects with E_QMP_COMMAND
   * (QEMU refused; `qmpClass`/`qmpDesc` say why), E_QMP_TIMEOUT, or E_QMP
   * (connection lost before the reply).
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: QmpCommandOptions = {}): Promise<T> {
    if (this.ended !== undefined) {
      return Promise.reject(this.ended ?? new QmpError("E_QMP", `The QMP connection (${this.path}) was closed; ${command} was not sent.`, { command }));
    }
    if (opts.signal?.aborted) {
      return Promise.reject(new QmpError("E_QMP", `QMP command ${command} was cancelled before it was sent.`, { command, cause: opts.signal.reason }));
    }
    const id = this.nextId++;
    const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        cleanup();
        reject(new QmpError("E_QMP_TIMEOUT", `QEMU did not answer QMP command ${command} within ${timeoutMs} ms; the VM may be hung. Kill it and start another.`, { command }));
      }, timeoutMs);
      const onAbort = (): void => {
        this.pending.delete(id);
        cleanup();
        reject(new QmpError("E_QMP", `QMP command ${command} was cancelled; QEMU may still carry it out.`, { command, cause: opts.signal?.reason }));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
      };
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, cleanup });
      const message: Record<string, unknown> = { execute: command, id };
      if (args !== undefined) message.arguments = args;
      this.socket.write(`${JSON.stringify(message)}\r\n`);
    });
  }

  /** Call `listener` for every event from now on; returns the function that stops it. */
  onEvent(listener: (event: QmpEvent) => void): () => void {
    this.on("event", listener);
    return () => this.off("event", listener);
  }

  /**
   * The events from now on as an async iterator. It ends when the connection
   * ends, when `signal` aborts, or when the loop breaks out.
   */
  events(opts: { signal?: AbortSignal } = {}): AsyncIterableIterator<QmpEvent> {
    const queue: QmpEvent[] = [];
    let wake: (() => void) | undefined;
    let done = this.ended !== undefined;
    const stop = (): void => {
      done = true;
      this.off("event", push);
      this.off("close", stop);
      opts.signal?.removeEventListener("abort", stop);
      wake?.();
    };
    const push = (e: QmpEvent): void => {
      queue.push(e);
      wake?.();
    };
    if (!done) {
      this.on("event", push);
      this.once("close", stop);
      if (opts.signal?.aborted) stop();
      else opts.signal?.addEventListener("abort", stop, { once: true });
    }
    const iterator: AsyncIterableIterator<QmpEvent> = {
      next: async () => {
        while (queue.length === 0 && !done) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        const value = queue.shift();
        return value === undefined ? { value: undefined, done: true } : { value, done: false };
      },
      return: async () => {
        stop();
        queue.length = 0;
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /**
   * The next event named `name` (and passing `match`, if given). Subscribe
   * before sending the command that causes it, or the event may be missed.
   */
  waitForEvent(name: string, opts: { match?: (e: QmpEvent) => boolean; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<QmpEvent> {
    return new Promise<QmpEvent>((resolve, reject) => {
      if (this.ended !== undefined) {
        reject(this.ended ?? new QmpError("E_QMP", `The QMP connection (${this.path}) was closed while waiting for event ${name}.`));
        return;
      }
      const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs;
      const finish = (err: QmpError | undefined, ev?: QmpEvent): void => {
        clearTimeout(timer);
        this.off("event", onEvent);
        this.off("close", onClose);
        opts.signal?.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve(ev!);
      };
      const onEvent = (e: QmpEvent): void => {
        if (e.event === name && (!opts.match || opts.match(e))) finish(undefined, e);
      };
      const onClose = (reason: QmpError | undefined): void =>
        finish(reason ?? new QmpError("E_QMP", `The QMP connection (${this.path}) was closed while waiting for event ${name}.`));
      const onAbort = (): void => finish(new QmpError("E_QMP", `Stopped waiting for QMP event ${name}: cancelled.`, { cause: opts.signal?.reason }));
      const timer = setTimeout(() => finish(new QmpError("E_QMP_TIMEOUT", `QEMU did not send event ${name} within ${timeoutMs} ms.`)), timeoutMs);
      this.on("event", onEvent);
      this.once("close", onClose);
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Close the connection; pending commands reject with E_QMP. Idempotent. */
  close(): void {
    if (this.ended !== undefined) return;
    this.finish(null, new QmpError("E_QMP", `The QMP connection (${this.path}) was closed before QEMU answered.`));
    this.socket.destroy();
  }

  private awaitGreeting(timeoutMs: number, signal: AbortSignal | undefined): Promise<QmpGreeting> {
    return new Promise<QmpGreeting>((resolve, reject) => {
      const timer = setTimeout(() => fail(new QmpError("E_QMP_TIMEOUT", `QEMU accepted the QMP connection (${this.path}) but sent no greeting within ${Math.round(timeoutMs)} ms.`)), timeoutMs);
      const onAbort = (): void => fail(new QmpError("E_QMP", "Stopped waiting for the QMP greeting: cancelled.", { cause: signal?.reason }));
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.greetingWaiter = undefined;
      };
      const fail = (err: QmpError): void => {
        done();
        reject(err);
      };
      this.greetingWaiter = {
        resolve: (g) => {
          done();
          resolve(g);
        },
        reject: fail,
      };
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line !== "") this.onLine(line);
      if (this.ended !== undefined) return;
    }
    if (this.buffer.length > MAX_LINE_CHARS) {
      this.protocolError(`a message longer than ${MAX_LINE_CHARS} characters without a line end`);
    }
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.protocolError(`a line that is not JSON: ${line.slice(0, 200)}`);
      return;
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
      this.protocolError(`a JSON value that is not an object: ${line.slice(0, 200)}`);
      return;
    }
    const m = msg as Record<string, unknown>;
    if ("QMP" in m) {
      const g = m.QMP as QmpGreeting;
      if (this.greetingWaiter) this.greetingWaiter.resolve({ version: g?.version, capabilities: Array.isArray(g?.capabilities) ? g.capabilities : [] });
      return;
    }
    if (this.greetingWaiter) {
      this.protocolError(`a message before the greeting: ${line.slice(0, 200)}`);
      return;
    }
    if (typeof m.event === "string") {
      const ts = (m.timestamp ?? {}) as { seconds?: number; microseconds?: number };
      const data = typeof m.data === "object" && m.data !== null ? (m.data as Record<string, unknown>) : {};
      this.emit("event", { event: m.event, data, timestamp: { seconds: ts.seconds ?? 0, microseconds: ts.microseconds ?? 0 } });
      return;
    }
    if ("return" in m || "error" in m) {
      this.onReply(m);
      return;
    }
    this.protocolError(`a message that is neither a reply nor an event: ${line.slice(0, 200)}`);
  }

  private onReply(m: Record<string, unknown>): void {
    let id = typeof m.id === "number" ? m.id : undefined;
    // QEMU answers input it could not parse with an error that has no id; commands
    // run in order, so it belongs to the oldest one still waiting.
    if (id === undefined && "error" in m) id = this.pending.keys().next().value;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p) return; // the reply to a command that timed out or was cancelled
    this.pending.delete(id!);
    p.cleanup();
    if ("error" in m) {
      const e = (m.error ?? {}) as { class?: unknown; desc?: unknown };
      const qmpClass = typeof e.class === "string" ? e.class : "GenericError";
      const qmpDesc = typeof e.desc === "string" ? e.desc : JSON.stringify(m.error);
      p.reject(new QmpError("E_QMP_COMMAND", `QEMU refused QMP command ${p.command}: ${qmpDesc} (${qmpClass}).`, { command: p.command, qmpClass, qmpDesc }));
    } else {
      p.resolve(m.return);
    }
  }

  private protocolError(what: string): void {
    this.fail(new QmpError("E_QMP", `QEMU's QMP socket (${this.path}) sent ${what}; this is not a QMP server, or the connection is corrupt.`));
    this.socket.destroy();
  }

  /** End the connection because of `err`: everything waiting rejects with it. */
  private fail(err: QmpError): void {
    if (this.ended !== undefined) return;
    this.finish(err, err);
  }

  private finish(reason: QmpError | null, pendingError: QmpError): void {
    this.ended = reason;
    this.greetingWaiter?.reject(pendingError);
    for (const p of this.pending.values()) {
      p.cleanup();
      p.reject(new QmpError(pendingError.code as "E_QMP", `${pendingError.message} (QMP command ${p.command} got no answer)`, { command: p.command, cause: pendingError }));
    }
    this.pending.clear();
    this.resolveClosed(reason ?? undefined);
    this.emit("close", reason ?? undefined);
  }
}

/** Connect to the socket, retrying while it is missing or refusing when asked to. */
async function openSocket(path: string, deadline: number, opts: QmpConnectOptions): Promise<Socket> {
  for (;;) {
    if (opts.signal?.aborted) throw new QmpError("E_QMP", `Stopped connecting to QMP socket ${path}: cancelled.`, { cause: opts.signal.reason });
    try {
      return await connectOnce(path, Math.max(1, deadline - performance.now()));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const retryable = opts.waitForSocket === true && (code === "ENOENT" || code === "ECONNREFUSED");
      if (!retryable || performance.now() + RETRY_STEP_MS >= deadline) {
        if (err instanceof QmpError) throw err;
        throw new QmpError("E_QMP", `Could not connect to QEMU's QMP socket ${path}: ${(err as Error).message}. Is QEMU running with -qmp unix:${path},server=on?`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, RETRY_STEP_MS));
    }
  }
}

function connectOnce(path: string, timeoutMs: number): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = netConnect({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new QmpError("E_QMP_TIMEOUT", `Connecting to QMP socket ${path} took longer than ${Math.round(timeoutMs)} ms.`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}
