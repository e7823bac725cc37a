/**
 * The kernel relay for busy tunnels. A Node relay copies every byte through
 * user space; once a tunnel has passed every check and carried a bulk of data
 * (thresholdBytes in either direction, so short HTTPS requests never pay for a
 * process start), its two sockets go to lg-relay (relay/lg-relay.c), which
 * moves the bytes with splice(2) and reports the byte counts when it exits.
 *
 * The hand-off: stop both pipes, move what Node already read to the other
 * side, wait until both write queues are in the kernel, then spawn with the
 * sockets as fds 3 and 4 (spawn stops Node reading them, synchronously). The
 * proxy keeps its own copies of the fds, idle, until the relay exits: the
 * connection then stays counted (per-client limit, listener, close()) exactly
 * as before, and destroying it from the proxy (removeListener, close, the
 * tunnel's teardown) stops the relay. The proxy's idle rule is passed to the
 * relay, which alone sees the traffic now. Any failure to start falls back to
 * the Node pipes, logged once per reason.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import type { Socket } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Where the Makefile puts the compiled relay, relative to the package root. */
export const RELAY_BINARY = join("dist", "bin", "lg-relay");
/** Bytes a tunnel carries (either direction) before it moves to the kernel relay: above a typical API call. */
export const DEFAULT_RELAY_THRESHOLD = 256 * 1024;
/** Kernel relays running at once; busier tunnels beyond it stay on the Node relay. */
export const DEFAULT_MAX_RELAYS = 64;
/** After SIGTERM, a relay that has not exited within this long gets SIGKILL. */
const KILL_GRACE_MS = 1_000;
/** The relay exits with this code when it failed before touching either socket: the Node pipes can take over. */
const EXIT_SETUP = 3;
/** Most of the relay's stdout/stderr kept (one report line is < 100 bytes). */
const MAX_OUTPUT = 4_096;

/** Options of the kernel relay (EgressProxyOptions.relay). */
export interface RelayOptions {
  /** The lg-relay binary; false turns the kernel relay off. Default: dist/bin/lg-relay of this package, when built. */
  path?: string | false;
  /** Hand a tunnel over after this many bytes in either direction. Default 256 KiB. */
  thresholdBytes?: number;
  /** Kernel relays at once. Default 64. */
  maxRelays?: number;
}

/** Bytes the relay moved: up = sandbox to destination, down = destination to sandbox. */
export interface RelayedBytes {
  up: number;
  down: number;
}

/** One spliced tunnel offered to the relay. */
export interface RelayTunnel {
  client: Socket;
  upstream: Socket;
  /** Called once if the relay took the tunnel and has ended, before both sockets are destroyed. */
  onRelayed(bytes: RelayedBytes): void;
}

/** Find dist/bin/lg-relay above this module (src/…, dist/…, a bundle chunk, the bench build). */
export function findRelay(from: string = dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, RELAY_BINARY);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** Starts and tracks the kernel relays of one proxy. */
export class Relays {
  private readonly path: string | undefined;
  private readonly threshold: number;
  private readonly max: number;
  private readonly running = new Map<ChildProcess, Promise<void>>();
  private readonly warned = new Set<string>();
  private closed = false;
  /** No binary found (and none was configured): said once, at the first tunnel. */
  private readonly missing: boolean;

  constructor(
    options: RelayOptions | undefined,
    private readonly idleTimeoutMs: number,
    private readonly warn: (message: string) => void,
  ) {
    this.path = options?.path === false ? undefined : (options?.path ?? findRelay());
    this.threshold = options?.thresholdBytes ?? DEFAULT_RELAY_THRESHOLD;
    this.max = options?.maxRelays ?? DEFAULT_MAX_RELAYS;
    this.missing = options?.path === undefined && this.path === undefined;
  }

  /** Pids of the relays running now. */
  pids(): number[] {
    return [...this.running.keys()].flatMap((c) => (c.pid === undefined ? [] : [c.pid]));
  }

  /** Watch a tunnel whose sockets are piped both ways; past the threshold, move it to a kernel relay. */
  offer(t: RelayTunnel): void {
    if (this.missing) this.warnOnce("missing", `the kernel relay (${RELAY_BINARY}) is not built: tunnels use the Node relay (make build compiles it)`);
    if (this.path === undefined || this.closed) return;
    const { client, upstream } = t;
    const check = () => {
      if (client.bytesRead < this.threshold && upstream.bytesRead < this.threshold) return;
      client.off("data", check);
      upstream.off("data", check);
      this.handOff(t);
    };
    // Added after the pipes' own listeners: the chunk that crosses the line has already been passed on.
    client.on("data", check);
    upstream.on("data", check);
    check();
  }

  /** Stop every relay (SIGTERM, then SIGKILL) and wait until they have exited. */
  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.running.keys()) stop(c);
    await Promise.all(this.running.values());
  }

  private handOff(t: RelayTunnel): void {
    const { client, upstream } = t;
    const open = () => !client.destroyed && !upstream.destroyed && !this.closed;
    if (!open() || !client.readable || !upstream.readable || !client.writable || !upstream.writable) return;
    if (this.running.size >= this.max) {
      this.warnOnce("max", `${this.max} kernel relays are running: further busy tunnels use the Node relay`);
      return;
    }
    client.unpipe(upstream);
    upstream.unpipe(client);
    client.pause();
    upstream.pause();
    // Stop Node's reads, move what it already read, wait until both write queues are in the
    // kernel, and repeat until a pass finds nothing; then spawn.
    holdReads(client);
    holdReads(upstream);
    const step = () => {
      if (!open()) return;
      const moved = forward(client, upstream) + forward(upstream, client);
      const pending = [client, upstream].filter((s) => s.writableLength > 0);
      if (moved === 0 && pending.length === 0) {
        this.start(t);
        return;
      }
      let waiting = Math.max(1, pending.length);
      const next = () => {
        if (--waiting === 0) step();
      };
      if (pending.length === 0) setImmediate(next);
      // A write callback runs once the bytes before it are in the kernel (or the socket failed: open() says so).
      for (const s of pending) s.write(EMPTY, next);
    };
    step();
  }

  private start(t: RelayTunnel): void {
    const { client, upstream } = t;
    const path = this.path!;
    let child: ChildProcess;
    try {
      // stdin: a pipe never written, whose EOF tells the relay the proxy is gone. No environment: it needs none.
      child = spawn(path, [String(this.idleTimeoutMs)], { stdio: ["pipe", "pipe", "pipe", client, upstream], env: {} });
    } catch (err) {
      this.fallBack(t, "spawn", `the kernel relay ${path} could not start (${(err as Error).message}): tunnels use the Node relay`);
      return;
    }
    // The relay applies the idle rule from now on; Node's timers would see only silence.
    client.setTimeout(0);
    upstream.setTimeout(0);
    let out = "";
    let err = "";
    child.stdout?.setEncoding("utf8").on("data", (s: string) => (out = (out + s).slice(-MAX_OUTPUT)));
    child.stderr?.setEncoding("utf8").on("data", (s: string) => (err = (err + s).slice(-MAX_OUTPUT)));
    const onSocketClose = () => stop(child);
    client.once("close", onSocketClose);
    upstream.once("close", onSocketClose);

    const done = new Promise<void>((resolve) => {
      let failed: Error | undefined;
      child.once("error", (e) => (failed = e));
      child.once("close", (code) => {
        this.running.delete(child);
        client.off("close", onSocketClose);
        upstream.off("close", onSocketClose);
        resolve();
        if (failed) {
          // Spawning failed (ENOENT, EACCES, EAGAIN): the child never had the sockets.
          this.fallBack(t, `spawn-${(failed as NodeJS.ErrnoException).code ?? "error"}`, `the kernel relay ${path} could not start (${failed.message}): tunnels use the Node relay`);
          return;
        }
        const report = parseReport(out);
        if (code === EXIT_SETUP && report && report.up === 0 && report.down === 0) {
          this.fallBack(t, "setup", `the kernel relay ${path} could not set up (${err.trim() || "exit 3"}): tunnels use the Node relay`);
          return;
        }
        if (!report && err.trim()) this.warnOnce(`exit-${code}`, `the kernel relay exited with ${String(code)}: ${err.trim()}`);
        t.onRelayed(report ?? { up: 0, down: 0 });
        // Our copies of the fds: closing them closes the connections, which the relay has ended or given up.
        client.destroy();
        upstream.destroy();
      });
    });
    this.running.set(child, done);
  }

  /** The relay did not take the tunnel: the Node pipes go on where they stopped. */
  private fallBack(t: RelayTunnel, reason: string, message: string): void {
    this.warnOnce(reason, message);
    const { client, upstream } = t;
    if (client.destroyed || upstream.destroyed) return;
    releaseReads(client);
    releaseReads(upstream);
    client.setTimeout(this.idleTimeoutMs);
    upstream.setTimeout(this.idleTimeoutMs);
    upstream.pipe(client);
    client.pipe(upstream);
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.warn(message);
  }
}

const EMPTY = Buffer.alloc(0);

/** Write everything `from` has buffered to `to`; returns the byte count. */
function forward(from: Socket, to: Socket): number {
  let n = 0;
  for (let chunk = from.read() as Buffer | null; chunk !== null; chunk = from.read() as Buffer | null) {
    n += chunk.length;
    to.write(chunk);
  }
  return n;
}

/**
 * Stop reading a socket for good: its handle at once (pause() alone lets Node read on until its
 * buffer is full), and every later attempt to start it again (read() and the stream's own
 * read-ahead on the next tick both call _read, which would restart the handle under the relay).
 */
function holdReads(socket: Socket): void {
  const s = socket as unknown as Internals;
  s._read = NO_READ;
  if (s._handle?.readStop) {
    s._handle.reading = false;
    s._handle.readStop();
  }
  s._readableState.reading = false;
}

/** Undo holdReads: the next read() or resume() starts the handle again. */
function releaseReads(socket: Socket): void {
  const s = socket as unknown as Internals;
  if (Object.hasOwn(s, "_read")) delete s._read;
  s._readableState.reading = false;
}

interface Internals {
  _read?: () => void;
  _handle?: { reading?: boolean; readStop?: () => number } | null;
  _readableState: { reading: boolean };
}

const NO_READ = () => undefined;

function stop(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }, KILL_GRACE_MS).unref();
}

function parseReport(out: string): RelayedBytes | undefined {
  const line = out.trim().split("\n").pop() ?? "";
  try {
    const r = JSON.parse(line) as { up?: unknown; down?: unknown };
    if (Number.isSafeInteger(r.up) && Number.isSafeInteger(r.down)) return { up: r.up as number, down: r.down as number };
  } catch {
    // no report: the relay was killed or failed; the caller decides
  }
  return undefined;
}
