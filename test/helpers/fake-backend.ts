/**
 * An in-memory Backend for unit tests of code above the backends (the pool, the hub).
 * It implements the real interface, with configurable create/destroy latency and
 * failure injection, and counts live sandboxes so tests can assert nothing leaks.
 */
import { SandboxError } from "../../src/sandbox/errors.js";
import type {
  Backend,
  BackendName,
  ExecHandle,
  ExecOptions,
  FileEntry,
  Sandbox,
  SandboxFiles,
  SandboxSpec,
} from "../../src/sandbox/types.js";

export interface FakeBackendOptions {
  /** Latency of create() in ms, fixed or per call (n counts calls from 1). */
  createMs?: number | ((n: number) => number);
  /** Latency of destroy() in ms. */
  destroyMs?: number;
  /** Return an error to make create call `n` fail with it (after its latency). */
  failCreate?: (n: number) => Error | undefined;
}

/** Resolve after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Poll `cond` every few ms until it holds; fails the test, naming `what`, after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what = "condition", timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`waitFor timed out after ${timeoutMs} ms: ${what}`);
    await sleep(2);
  }
}

export class FakeBackend implements Backend {
  readonly name: BackendName = "namespace";
  /** Sandboxes created and not yet destroyed. */
  readonly live = new Set<FakeSandbox>();
  /** Calls of create() so far, failed ones included. */
  createCalls = 0;
  /** create() calls that have not returned yet. */
  creating = 0;
  /** Highest number of live sandboxes seen at once. */
  peakLive = 0;
  /** Highest number of live sandboxes plus creations in flight seen at once. */
  peakReserved = 0;
  destroyCalls = 0;

  constructor(private readonly opts: FakeBackendOptions = {}) {}

  async check(): Promise<void> {}

  async create(spec: SandboxSpec): Promise<Sandbox> {
    const n = ++this.createCalls;
    this.creating++;
    this.bumpPeaks();
    try {
      const ms = typeof this.opts.createMs === "function" ? this.opts.createMs(n) : (this.opts.createMs ?? 0);
      await sleep(ms);
      const err = this.opts.failCreate?.(n);
      if (err) throw err;
      const sb = new FakeSandbox(`fake-${n}`, spec, this);
      this.live.add(sb);
      return sb;
    } finally {
      this.creating--;
      this.bumpPeaks();
    }
  }

  /** Called by FakeSandbox.destroy(). */
  async destroyOne(sb: FakeSandbox): Promise<void> {
    this.destroyCalls++;
    await sleep(this.opts.destroyMs ?? 0);
    this.live.delete(sb);
  }

  private bumpPeaks(): void {
    this.peakLive = Math.max(this.peakLive, this.live.size);
    this.peakReserved = Math.max(this.peakReserved, this.live.size + this.creating);
  }
}

export class FakeSandbox implements Sandbox {
  readonly backend: BackendName = "namespace";
  readonly network = undefined;
  destroyed = false;
  /** Set by a test to play a sandbox that broke on its own (a dead VM). */
  broken: SandboxError | undefined = undefined;
  private destroying: Promise<void> | undefined;
  private readonly store = new Map<string, Uint8Array>();

  constructor(
    readonly id: string,
    readonly spec: SandboxSpec,
    private readonly owner: FakeBackend,
  ) {}

  exec(_argv: string[], _opts?: ExecOptions): ExecHandle {
    if (this.destroyed) {
      throw new SandboxError("E_SANDBOX_DESTROYED", `Sandbox ${this.id} was destroyed; lease a new one.`);
    }
    const empty: AsyncIterable<Uint8Array> = { async *[Symbol.asyncIterator]() {} };
    return {
      stdout: empty,
      stderr: empty,
      write: async () => {},
      closeStdin: () => {},
      kill: () => {},
      wait: async () => ({ exitCode: 0, signal: null, durationMs: 0 }),
    };
  }

  readonly files: SandboxFiles = {
    read: async (path) => {
      const data = this.store.get(path);
      if (!data) throw new SandboxError("E_FILE_NOT_FOUND", `No file at ${path}.`);
      return data;
    },
    write: async (path, data) => {
      this.store.set(path, typeof data === "string" ? new TextEncoder().encode(data) : data);
    },
    list: async () =>
      [...this.store].map(([name, data]): FileEntry => ({ name, type: "file", size: data.byteLength })),
    remove: async (path) => {
      this.store.delete(path);
    },
  };

  destroy(): Promise<void> {
    this.destroyed = true;
    return (this.destroying ??= this.owner.destroyOne(this));
  }
}

/** A valid spec for tests that do not care about its content. */
export function testSpec(): SandboxSpec {
  return {
    backend: "namespace",
    limits: { memoryBytes: 256 * 1024 * 1024, pids: 64, cpus: 1, diskBytes: 1024 * 1024 * 1024 },
    seccomp: { level: "default", mode: "enforce" },
    network: "none",
    maxFileBytes: 1024 * 1024,
  };
}
