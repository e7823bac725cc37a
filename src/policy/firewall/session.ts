/**
 * Long-lived `nft -i` and `ip -force -batch -` processes, fed requests on stdin.
 *
 * On the project's hosts starting any process costs 4-7 ms (fork and exec are
 * slow in these VMs), and nft needs ~10 ms more to load its libraries, so an
 * attach built from fresh `ip` and `nft` processes took ~30 ms. Both tools read
 * commands from stdin as they arrive, so one process each serves every request:
 * - `nft -i` runs each input line as one transaction, so a request is the
 *   script joined into one line: atomic, as `nft -f` would be.
 * - `ip -force -batch -` runs line by line and keeps going after a failure.
 *
 * Neither says when a request is done, so each request is followed by a
 * sentinel command that fails in a known way, naming a random tag: its error on
 * stderr (unbuffered, in order) marks the end, and whatever stderr carried
 * before it is the request's own complaint. stdout is not read.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";

/** How a request becomes input, and how its end is recognised. */
export interface SessionSpec {
  argv: string[];
  /** The input for one request (newline-terminated). */
  encode(script: string): string;
  /** A command that fails naming `tag`, and the pattern of its complete error on stderr. */
  sentinel(tag: string): { line: string; pattern: RegExp };
  /** True when the request's stderr says it failed. */
  failed(stderr: string): boolean;
}

/** `nft -i`: one line, one transaction. */
export function nftSessionSpec(nft: string): SessionSpec {
  return {
    argv: [nft, "-i"],
    // Our scripts hold one command per line; on one line nft separates commands with ";".
    encode: (script) => `${script.split("\n").filter((l) => l.trim() !== "").join("; ")}\n`,
    sentinel: (tag) => ({ line: `list table inet lg_sentinel_${tag}`, pattern: new RegExp(`Error: [^\\n]*\\nlist table inet lg_sentinel_${tag}\\n[ \\t]*\\^+\\n`) }),
    failed: (stderr) => /\bError\b/.test(stderr),
  };
}

/** `ip -force -batch -` in the host's network namespace. */
export function ipSessionSpec(ip: string): SessionSpec {
  return {
    argv: [ip, "-force", "-batch", "-"],
    encode: (script) => (script.endsWith("\n") ? script : `${script}\n`),
    // Interface names have at most 15 characters: "lgq" and 12 hex digits.
    sentinel: (tag) => ({ line: `link show dev lgq${tag}`, pattern: new RegExp(`Device "lgq${tag}" does not exist\\.\\nCommand failed -:\\d+\\n`) }),
    failed: (stderr) => stderr.trim() !== "",
  };
}

interface Pending {
  pattern: RegExp;
  resolve: (r: { ok: boolean; output: string }) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const DEFAULT_TIMEOUT_MS = 15_000;
/** Start a fresh process after this many requests: bounds whatever the tools accumulate (nft's line history, ip's link cache). */
const RECYCLE_AFTER = 2_000;

/** Requests to one long-lived process, answered in order; a dead or stuck process is replaced on the next request. */
export class Session {
  private child: ChildProcess | undefined;
  private stderr = "";
  private readonly pending: Pending[] = [];
  private served = 0;

  constructor(private readonly spec: SessionSpec) {}

  /** Run one request; `ok` is false when the tool complained (its complaint is `output`). Rejects when the process could not run. */
  run(script: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<{ ok: boolean; output: string }> {
    if (this.child && this.served >= RECYCLE_AFTER && this.pending.length === 0) this.retire();
    const child = this.child ?? this.start();
    this.served++;
    const tag = randomBytes(6).toString("hex");
    const { line, pattern } = this.spec.sentinel(tag);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`${this.spec.argv[0]} did not answer within ${timeoutMs} ms`)), timeoutMs);
      this.pending.push({ pattern, resolve, reject, timer });
      child.ref();
      child.stdin!.write(this.spec.encode(script) + `${line}\n`);
    });
  }

  /** Start the process now, so the first request does not wait for it. */
  warm(): void {
    this.child ??= this.start();
  }

  /** The current process's pid (undefined before the first request or warm()). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** True while the current process runs. */
  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Let the process finish what it was given and exit (its stdin closes). */
  end(): void {
    this.retire();
  }

  /** End the process (pending requests fail). */
  close(): void {
    this.fail(new Error(`${this.spec.argv[0]} session closed`));
  }

  private start(): ChildProcess {
    const child = spawn(this.spec.argv[0]!, this.spec.argv.slice(1), { stdio: ["pipe", "ignore", "pipe"], env: { ...process.env, LC_ALL: "C" } });
    this.child = child;
    this.stderr = "";
    this.served = 0;
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (d: string) => {
      if (this.child !== child) return;
      this.stderr += d;
      this.settle();
    });
    child.stdin!.on("error", () => {}); // EPIPE when it died: 'exit' reports it
    child.on("error", (err) => this.child === child && this.fail(err));
    child.on("exit", (code, signal) => this.child === child && this.fail(new Error(`${this.spec.argv[0]} exited (${signal ?? code})${this.stderr ? `: ${this.stderr.trim().split("\n")[0]}` : ""}`)));
    // Idle, it must not keep the process alive; run() refs it until the answer comes.
    child.unref();
    for (const s of [child.stdin, child.stderr]) (s as unknown as { unref?: () => void }).unref?.();
    return child;
  }

  /** Answer the requests whose sentinel has arrived, in order. */
  private settle(): void {
    while (this.pending.length > 0) {
      const p = this.pending[0]!;
      const m = p.pattern.exec(this.stderr);
      if (!m) return;
      const output = this.stderr.slice(0, m.index);
      this.stderr = this.stderr.slice(m.index + m[0].length);
      this.pending.shift();
      clearTimeout(p.timer);
      p.resolve({ ok: !this.spec.failed(output), output });
    }
    this.child?.unref();
  }

  /** Stop taking requests on the current process; it exits when its stdin closes. */
  private retire(): void {
    this.child?.stdin?.end();
    this.child = undefined;
  }

  private fail(err: Error): void {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}
