/**
 * Running the bundled `luminaguard` CLI in tests: an environment without the
 * user's provider keys or LuminaGuard overrides, commands in the background,
 * commands on a real pseudo-terminal (util-linux `script`) that answer approval
 * prompts, and an end for every process a test started.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";

export const bin = resolve(import.meta.dirname, "../../bin/luminaguard");

/** process.env minus provider keys and LUMINAGUARD_* overrides, without colour, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(OPENAI|ANTHROPIC|OLLAMA|LUMINAGUARD)_/.test(k))) as Record<string, string>;
  return { ...env, NO_COLOR: "1", ...extra };
}

export interface Background {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

/** The processes one test file starts; killAll() ends the ones still running (by their own handles). */
export class CliProcesses {
  private readonly children = new Set<ChildProcess>();

  constructor(private readonly env: () => Record<string, string> = () => ({})) {}

  /** `luminaguard <args>` in the background without a TTY; its output collected as it comes. */
  background(args: string[]): Background {
    const child = spawn(bin, args, { env: cleanEnv(this.env()), stdio: ["ignore", "pipe", "pipe"] });
    this.children.add(child);
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.once("close", (code) => (this.children.delete(child), r(code))));
    return { child, out: () => out, err: () => err, exited };
  }

  /** A shell command on a pseudo-terminal; each answer is typed when a new "Approve?" prompt shows. */
  onTerminal(command: string, answers: string[]): Promise<{ status: number | null; output: string }> {
    return new Promise((done) => {
      const child = spawn("/usr/bin/script", ["-qec", command, "/dev/null"], { env: cleanEnv(this.env()), stdio: ["pipe", "pipe", "pipe"] });
      this.children.add(child);
      let output = "";
      let prompts = 0;
      const onData = (d: Buffer): void => {
        output += d.toString();
        const seen = output.match(/Approve\?/g)?.length ?? 0;
        while (prompts < seen && answers.length > 0) {
          prompts++;
          child.stdin.write(`${answers.shift()}\n`);
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      child.on("close", (status) => (this.children.delete(child), done({ status, output })));
    });
  }

  killAll(): void {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }
}
