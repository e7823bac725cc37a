/**
 * Callers' commands before pool refills. Under TCG a clone being prepared (QEMU
 * start, restore, reseed, configure, warm-up) is seconds of CPU on the host, and
 * a refill starts the moment a sandbox is leased: exactly when the caller's first
 * command runs. On two cores nice values do not help (each busy thread gets a core
 * of its own; what is shared is the host's event loop, memory bandwidth and QEMU's
 * I/O threads), and the first command after a lease ran 2-3x slower while a
 * refill was being made.
 *
 * So the backend's own preparation steps wait, at a few points, while a command
 * started less than `windowMs` ago is still running. The wait is bounded
 * (`maxWaitMs` per step), so a steady stream of commands slows refills but never
 * stops them, and a long-running command (an MCP server) delays a step once, by
 * at most one window.
 */

export interface ForegroundOptions {
  /** A command counts as foreground for this long after it started. */
  windowMs: number;
  /** One step waits at most this long. */
  maxWaitMs: number;
}

export const DEFAULT_FOREGROUND: ForegroundOptions = { windowMs: 150, maxWaitMs: 500 };

export class ForegroundGate {
  /** Start times of running commands. */
  private readonly running = new Map<symbol, number>();
  /** Steps waiting in quiet(): a command's end re-checks them all. */
  private readonly waiting = new Set<() => void>();

  constructor(private readonly opts: ForegroundOptions = DEFAULT_FOREGROUND) {}

  /** A command started; call the returned function when it ended. */
  begin(): () => void {
    const key = Symbol("exec");
    this.running.set(key, performance.now());
    return () => {
      if (this.running.delete(key)) for (const w of [...this.waiting]) w();
    };
  }

  /** Commands still within their window (for tests and stats). */
  get busy(): number {
    const now = performance.now();
    let n = 0;
    for (const t of this.running.values()) if (now - t < this.opts.windowMs) n++;
    return n;
  }

  /**
   * Resolve once no command is within its window, or after maxWaitMs. Always
   * yields one macrotask first: a caller that leases and then execs at once has
   * registered its command by then (the lease's refill calls us synchronously).
   */
  async quiet(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    const deadline = performance.now() + this.opts.maxWaitMs;
    for (;;) {
      const now = performance.now();
      let youngest = -Infinity;
      for (const t of this.running.values()) if (now - t < this.opts.windowMs) youngest = Math.max(youngest, t);
      if (youngest === -Infinity || now >= deadline) return;
      const until = Math.min(deadline, youngest + this.opts.windowMs) - now;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiting.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(1, until));
        this.waiting.add(done);
      });
    }
  }
}
