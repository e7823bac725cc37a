/**
 * Calling the `runsc` binary: where it is, the global flags every call of one
 * LuminaGuard process uses, and a runner that captures output and never hangs.
 *
 * Every call passes `--root <our state folder>`, so we only ever see and touch
 * containers we made; other runsc users (Docker, another tool) keep theirs.
 */
import { execFile, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SandboxError } from "../errors.js";
import { INSTALL_RUNSC } from "./probe.js";


/** Absolute path of runsc, or a typed error that says how to install it. */
export function findRunsc(): string {
  // The upstream installer puts it in /usr/local/bin, Debian's package in /usr/bin.
  for (const dir of ["/usr/local/bin", "/usr/bin", "/usr/sbin", "/bin"]) {
    const p = join(dir, "runsc");
    if (existsSync(p)) return p;
  }
  throw new SandboxError("E_BACKEND_UNAVAILABLE", `runsc is not installed, so the gVisor backend cannot run: ${INSTALL_RUNSC}. Or use --backend namespace.`);
}

export interface RunscConfig {
  path: string;
  /** State folder for `--root`. */
  root: string;
  /** Not root: runsc's --rootless mode (no cgroups, no host network). */
  rootless: boolean;
}

/** Flags before the subcommand. Network and cgroups are set per container at create time. */
export function globalArgs(cfg: RunscConfig, network: "none" | "host" | "sandbox"): string[] {
  return [
    "--root", cfg.root,
    `--network=${network}`,
    // Our own cgroup (policy/limits) bounds the whole sandbox; runsc must not make its own.
    "--ignore-cgroups",
    ...(cfg.rootless ? ["--rootless"] : []),
  ];
}

export interface RunscResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run runsc with `args` (global flags included by the caller); resolves even on failure. */
export function runRunsc(path: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<RunscResult> {
  return runArgv([path, ...args], opts);
}

/** Run a command line (e.g. runsc behind a cgroup or netns launcher); resolves even on failure. */
export function runArgv(argv: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<RunscResult> {
  const [path, ...args] = argv;
  return new Promise((resolve) => {
    execFile(path!, args, { timeout: opts.timeoutMs ?? 30_000, killSignal: "SIGKILL", env: opts.env ?? { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" }, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** runsc's error text, shortened to its last meaningful line for messages. */
export function runscComplaint(res: RunscResult): string {
  const lines = `${res.stderr}\n${res.stdout}`.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
  return lines.at(-1) ?? (res.code === null ? "it was killed or timed out" : `exit code ${res.code}`);
}

/**
 * Run a command that leaves daemons behind (`runsc run --detach`): they inherit
 * its stdio, so pipes would never reach EOF. stdout goes nowhere and stderr to
 * `logFile`, which the result's stderr holds.
 */
export function runDetaching(argv: string[], logFile: string, opts: { timeoutMs?: number } = {}): Promise<RunscResult> {
  const fd = openSync(logFile, "a", 0o600);
  return new Promise<RunscResult>((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", fd], env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } });
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    const finish = (code: number | null): void => {
      clearTimeout(timer);
      let stderr = "";
      try {
        stderr = readFileSync(logFile, "utf8");
      } catch {
        // removed meanwhile
      }
      resolve({ code, stdout: "", stderr });
    };
    child.once("error", (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout: "", stderr: err.message });
    });
    child.once("exit", (code) => finish(code));
  }).finally(() => closeSync(fd));
}
