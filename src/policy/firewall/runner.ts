/**
 * Running `ip` and `nft`.
 *
 * Measured on the project's 2-core hosts: Node's own spawn costs ~8 ms per
 * child (fork of a large process), while `/bin/sh` starts a child in ~2 ms.
 * A networked sandbox needs three children (ip for the host side, ip inside the
 * namespace, nft), so `ShellRunner` keeps a few long-lived shells and feeds
 * them commands on stdin instead of spawning each one from Node. Each shell
 * runs one request at a time, so its output needs no demultiplexing: a marker
 * line with a per-shell random token and the exit status ends each request.
 * The shells exit by themselves when this process goes (their stdin closes).
 *
 * `SpawnRunner` spawns every command directly: the simple reference, used when
 * /bin/sh is missing and by the benchmark for comparison.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";

/** One command; `input` becomes its stdin. */
export interface Step {
  argv: string[];
  input?: string;
}

/** `output` is stdout and stderr together, in order; `code` is the first failing step's exit status (0 when all passed). */
export interface RunResult {
  code: number;
  output: string;
}

export interface CommandRunner {
  /** Run the steps one after another, stopping at the first failure. Rejects only when the command could not run at all. */
  run(steps: Step[], opts?: { timeoutMs?: number }): Promise<RunResult>;
  /** Stop helper processes (pending requests fail). */
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 15_000;
const ENV = { ...process.env, LC_ALL: "C" };

/** A runner for this host: persistent shells when /bin/sh exists. */
export function defaultRunner(): CommandRunner {
  return existsSync("/bin/sh") ? new ShellRunner() : new SpawnRunner();
}

/** Spawns each command from Node. */
export class SpawnRunner implements CommandRunner {
  async run(steps: Step[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    let output = "";
    for (const step of steps) {
      const r = await spawnOne(step, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      output += r.output;
      if (r.code !== 0) return { code: r.code, output };
    }
    return { code: 0, output };
  }

  close(): void {}
}

function spawnOne(step: Step, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = step.argv;
    const child = spawn(cmd!, args, { stdio: [step.input === undefined ? "ignore" : "pipe", "pipe", "pipe"], env: ENV });
    let output = "";
    const collect = (d: Buffer) => (output += d.toString("utf8"));
    child.stdout!.on("data", collect);
    child.stderr!.on("data", collect);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, output: signal ? `${output}${cmd} ended by ${signal}${signal === "SIGKILL" ? ` (timed out after ${timeoutMs} ms)` : ""}\n` : output });
    });
    if (step.input !== undefined) {
      child.stdin!.on("error", () => {}); // the command may exit before reading everything; its exit status tells
      child.stdin!.end(step.input);
    }
  });
}

interface Request {
  script: string;
  timeoutMs: number;
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

/** Feeds commands to a few persistent `/bin/sh` processes. */
export class ShellRunner implements CommandRunner {
  private readonly idle: Helper[] = [];
  private readonly all = new Set<Helper>();
  private readonly queue: Request[] = [];

  /** `maxShells`: how many commands may run at once (two cores gain nothing from more). */
  constructor(private readonly maxShells = 4) {}

  run(steps: Step[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ script: shellScript(steps), timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, resolve, reject });
      this.pump();
    });
  }

  close(): void {
    for (const h of [...this.all]) h.kill(new Error("the firewall's command runner was closed"));
    this.idle.length = 0;
    for (const r of this.queue.splice(0)) r.reject(new Error("the firewall's command runner was closed"));
  }

  private pump(): void {
    while (this.queue.length > 0) {
      if (this.idle.length === 0 && this.all.size >= this.maxShells) return;
      const helper = this.idle.pop() ?? this.startHelper();
      const req = this.queue.shift()!;
      helper.start(req, () => {
        if (this.all.has(helper)) this.idle.push(helper);
        this.pump();
      });
    }
  }

  private startHelper(): Helper {
    const h = new Helper(() => {
      this.all.delete(h);
      const i = this.idle.indexOf(h);
      if (i >= 0) this.idle.splice(i, 1);
      this.pump();
    });
    this.all.add(h);
    return h;
  }
}

/** One persistent shell running one request at a time. */
class Helper {
  private readonly child: ChildProcess;
  private readonly token = randomBytes(8).toString("hex");
  private readonly marker: RegExp;
  private buffer = "";
  private stderr = "";
  private current: { req: Request; done: () => void; timer: NodeJS.Timeout } | undefined;
  private dead = false;

  constructor(private readonly onDeath: () => void) {
    this.marker = new RegExp(`\\n@@${this.token} (\\d+)\\n`);
    // Its own process group, so a timeout can kill the shell together with the command it runs.
    this.child = spawn("/bin/sh", ["-s"], { stdio: ["pipe", "pipe", "pipe"], env: ENV, detached: true });
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (d: string) => this.onData(d));
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (d: string) => (this.stderr += d));
    this.child.stdin!.on("error", () => {}); // EPIPE after the shell died: 'exit' reports it
    this.child.on("error", (err) => this.kill(err));
    this.child.on("exit", () => this.kill(new Error(`the helper shell exited${this.stderr ? `: ${this.stderr.trim()}` : ""}`)));
    // Idle shells must not keep the process alive; a request refs the shell until it is answered.
    this.child.unref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) (s as unknown as { unref?: () => void }).unref?.();
  }

  start(req: Request, done: () => void): void {
    const timer = setTimeout(() => this.kill(new Error(`a firewall command did not finish within ${req.timeoutMs} ms`)), req.timeoutMs);
    this.current = { req, done, timer };
    this.child.ref();
    this.child.stdin!.write(`${req.script}printf '\\n@@%s %s\\n' ${this.token} "$?"\n`);
  }

  kill(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    try {
      process.kill(-this.child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
    const cur = this.current;
    this.current = undefined;
    if (cur) {
      clearTimeout(cur.timer);
      cur.req.reject(err);
    }
    this.onDeath();
  }

  private onData(d: string): void {
    this.buffer += d;
    const m = this.marker.exec(this.buffer);
    if (!m || !this.current) return;
    const output = this.buffer.slice(0, m.index);
    this.buffer = this.buffer.slice(m.index + m[0].length);
    const { req, done, timer } = this.current;
    this.current = undefined;
    clearTimeout(timer);
    this.child.unref();
    req.resolve({ code: Number(m[1]), output: output + this.takeStderr() });
    done();
  }

  private takeStderr(): string {
    const s = this.stderr;
    this.stderr = "";
    return s;
  }
}

/** The shell text for `steps`: each command's stdin is a quoted here-document, so nothing in it is expanded. */
export function shellScript(steps: Step[]): string {
  return steps
    .map((step, i) => {
      const cmd = step.argv.map(shellQuote).join(" ");
      const chain = i < steps.length - 1 ? " &&" : "";
      if (step.input === undefined) return `${cmd} </dev/null 2>&1${chain}\n`;
      let delim: string;
      do delim = `LG_EOF_${randomBytes(6).toString("hex")}`;
      while (step.input.split("\n").includes(delim));
      const body = step.input.endsWith("\n") || step.input === "" ? step.input : `${step.input}\n`;
      return `${cmd} <<'${delim}' 2>&1${chain}\n${body}${delim}\n`;
    })
    .join("");
}

/** Single-quote for sh. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
