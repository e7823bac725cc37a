/**
 * The shape of one host check (`luminaguard doctor`) and the small helpers every
 * probe shares: a time box, a command runner that never throws, a PATH lookup
 * and version parsing. Probes live next to the module they concern; this file
 * only knows how to run them.
 */
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { delimiter, join } from "node:path";

/** ok: works; warn: works worse or an optional feature is missing; fail: a required part is broken; skip: not applicable here. */
export type ProbeStatus = "ok" | "warn" | "fail" | "skip";

/** What one check found, and how to fix it when it is not ok. */
export interface ProbeResult {
  /** Stable id, `<module>.<thing>` (scripts match on it). */
  id: string;
  title: string;
  status: ProbeStatus;
  detail: string;
  fix?: string;
}

/** What a probe's `run` returns; `runProbe` adds the id and title. */
export type ProbeOutcome = Omit<ProbeResult, "id" | "title">;

/** One check. `run` should honour `signal` (the time box aborts it) and may throw: that becomes `onError`. */
export interface Probe {
  id: string;
  title: string;
  /** Status reported when the probe throws or runs out of time: "warn" for optional features. */
  onError: "fail" | "warn";
  run(signal: AbortSignal): Promise<ProbeOutcome>;
}

/** Every probe must answer within this; a hung tool must not hang `doctor`. */
export const PROBE_TIMEOUT_MS = 5_000;

/** Run one probe inside a time box; never rejects. */
export async function runProbe(probe: Probe, timeoutMs: number = PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<ProbeOutcome>((resolve) => {
    timer = setTimeout(() => {
      ac.abort();
      resolve({ status: probe.onError, detail: `did not finish within ${timeoutMs / 1000} s`, fix: "Something on this host hangs: re-run `luminaguard doctor`; if it persists, run the check's command by hand to see where." });
    }, timeoutMs);
  });
  // Start the probe on a later tick so that a probe doing synchronous work cannot delay the others' start.
  const ran = new Promise<void>((r) => setImmediate(r)).then(() => probe.run(ac.signal)).then(
    (outcome) => outcome,
    (err: unknown): ProbeOutcome => ({ status: probe.onError, detail: `the check itself failed: ${messageOf(err)}` }),
  );
  try {
    const outcome = await Promise.race([ran, timedOut]);
    return { id: probe.id, title: probe.title, ...outcome };
  } finally {
    clearTimeout(timer);
  }
}

/** Run probes in parallel, each in its own time box; results keep the input order. */
export function runProbes(probes: Probe[], timeoutMs: number = PROBE_TIMEOUT_MS): Promise<ProbeResult[]> {
  return Promise.all(probes.map((p) => runProbe(p, timeoutMs)));
}

/** The result of `runCommand`: `ok` is exit code 0; `error` names a spawn failure, a timeout or an abort. */
export interface CommandResult {
  ok: boolean;
  code: number | null;
  stdout: string;
  stderr: string;
  error?: string;
}

/** Run a program without a shell and collect its output; never rejects (probes report, they do not throw). */
export function runCommand(file: string, args: string[], opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { encoding: "utf8", timeout: opts.timeoutMs ?? PROBE_TIMEOUT_MS - 500, killSignal: "SIGKILL", maxBuffer: 4 * 1024 * 1024, signal: opts.signal, env: { ...process.env, LC_ALL: "C" } },
      (err, stdout, stderr) => {
        if (!err) return resolve({ ok: true, code: 0, stdout, stderr });
        const e = err as NodeJS.ErrnoException & { code?: unknown; killed?: boolean; signal?: string | null };
        const code = typeof e.code === "number" ? e.code : null;
        let error: string | undefined;
        if (e.name === "AbortError") error = "aborted";
        else if (e.killed) error = "timed out";
        else if (typeof e.code === "string") error = e.code;
        else if (e.signal) error = `killed by ${e.signal}`;
        resolve({ ok: false, code, stdout, stderr, ...(error === undefined ? {} : { error }) });
      },
    );
  });
}

/** The first line of a command's complaint, for a one-line detail. */
export function firstLine(text: string): string {
  return (
    text
      .split("\n")
      .map((l) => l.trim())
      .find((l) => l !== "") ?? ""
  );
}

/** A failed command in a few words: its stderr's first line, or why it did not run. */
export function describeFailure(res: CommandResult): string {
  return firstLine(res.stderr) || firstLine(res.stdout) || res.error || `exit code ${res.code}`;
}

// Root's tools live in sbin, which a non-login PATH often lacks; search them too.
const SYSTEM_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** Absolute path of an executable found on PATH, then in `extraDirs` and the system bin dirs; undefined when absent. */
export async function whichExecutable(name: string, extraDirs: string[] = []): Promise<string | undefined> {
  const pathDirs = (process.env.PATH ?? "").split(delimiter).filter((d) => d.startsWith("/"));
  for (const dir of new Set([...pathDirs, ...extraDirs, ...SYSTEM_DIRS])) {
    const p = join(dir, name);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      // not here: try the next folder
    }
  }
  return undefined;
}

/** The first dotted version number ("1.0.6", "7.2.0", "6.1") in a tool's --version output. */
export function parseVersion(text: string): string | undefined {
  return /(\d+\.\d+(?:\.\d+)*)/.exec(text)?.[1];
}

/** Compare dotted versions numerically: negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** True when this process runs as root (some checks only make sense, or only work, as root). */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** An error's message without its stack. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
