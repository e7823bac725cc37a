/** `luminaguard exec`: one command in a fresh sandbox, output streamed, exit code passed through. */
import { Command, Option } from "commander";
import { readConfigFile, parseConfig } from "../config/load.js";
import { toSandboxSpec } from "../config/schema.js";
import { parseDuration } from "../config/duration.js";
import { createBackend } from "../sandbox/backends.js";
import { LuminaError, UsageError } from "../errors.js";
import { diskFullError } from "../sandbox/errors.js";
import type { ExecResult } from "../sandbox/types.js";
import { EXIT, printError } from "./output.js";
import { signalToExitCode } from "./exit-codes.js";
import { networkFromFlags, type NetFlags } from "./net-flags.js";

interface ExecFlags extends NetFlags {
  backend?: string;
  memory?: string;
  disk?: string;
  cpus?: string;
  pids?: string;
  timeout?: string;
  seccomp?: string;
  seccompMode?: string;
  workspace?: string;
  cwd?: string;
  env: string[];
  config?: string;
}

const HELP_AFTER = `
Exit codes:
  0-123      the command's own exit code
  124        the command exceeded --timeout and was killed (with all it started)
  125        LuminaGuard could not run the sandbox (the message says why)
  128+N      the command was killed by signal N (137 = SIGKILL, also after an
             out-of-memory kill, which prints E_OOM)
  2          bad usage (unknown flag, bad size, missing command)

Examples:
  luminaguard exec -- echo hello
  luminaguard exec --memory 256M --pids 64 --timeout 30s -- python3 script.py
  luminaguard exec --disk 64M -- sh -c 'make build'   # ENOSPC past 64 MiB in /tmp + /workspace
  luminaguard exec --workspace ./project --seccomp strict -- sh -c 'ls -la'`;

/** Accumulates a repeatable flag. */
function collectRepeated(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function toNumber(value: string, flag: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw new UsageError(`${flag} needs a number, got ${JSON.stringify(value)}.`);
  return n;
}

/** Lay the flags over the config file's sandbox section and validate once. */
function specFromFlags(flags: ExecFlags) {
  const raw = readConfigFile(flags.config);
  const sandbox = { ...((raw.sandbox as Record<string, unknown> | undefined) ?? {}) };
  const limits = { ...((sandbox.limits as Record<string, unknown> | undefined) ?? {}) };
  const seccomp = { ...((sandbox.seccomp as Record<string, unknown> | undefined) ?? {}) };
  if (flags.backend) sandbox.backend = flags.backend;
  if (flags.memory) limits.memory = flags.memory;
  if (flags.disk) limits.disk = flags.disk;
  if (flags.cpus) limits.cpus = toNumber(flags.cpus, "--cpus");
  if (flags.pids) limits.pids = toNumber(flags.pids, "--pids");
  if (flags.seccomp) seccomp.level = flags.seccomp;
  if (flags.seccompMode) seccomp.mode = flags.seccompMode;
  if (flags.workspace) sandbox.workspace = flags.workspace;
  const network = networkFromFlags(flags, sandbox.network);
  if (network !== undefined) sandbox.network = network;
  const config = parseConfig({ ...raw, sandbox: { ...sandbox, limits, seccomp } }, "options");
  return { config, spec: toSandboxSpec(config.sandbox) };
}

function parseEnv(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--env needs KEY=VALUE, got ${JSON.stringify(pair)}.`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

async function runExec(argv: string[], flags: ExecFlags): Promise<number> {
  const { config, spec } = specFromFlags(flags);
  // Said rather than ignored: a micro-VM's files live in its guest RAM overlay.
  if (flags.disk && spec.backend === "microvm") process.stderr.write("[luminaguard] --disk does not apply to micro-VMs: their /tmp and /workspace are guest RAM, bounded by --memory.\n");
  const timeoutMs = flags.timeout ? parseDuration(flags.timeout, "--timeout") : undefined;
  const env = parseEnv(flags.env);
  const backend = await createBackend(spec.backend, {
    sandboxUid: config.sandbox.uid,
    oneShot: true,
    microvm: config.microvm,
    onProgress: (line) => process.stderr.write(`[luminaguard] ${line}\n`),
  });
  const sandbox = await backend.create(spec).catch(async (err: unknown) => {
    await backend.close?.();
    throw err;
  });
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once("SIGINT", onSigint);
  process.once("SIGTERM", onSigint);
  try {
    const handle = sandbox.exec(argv, { env, timeoutMs, signal: abort.signal, ...(flags.cwd ? { cwd: flags.cwd } : {}) });
    // Forward our stdin only when something is piped in; a terminal's stdin stays ours.
    if (!process.stdin.isTTY) {
      process.stdin.on("data", (chunk: Buffer) => void handle.write(chunk).catch(() => {}));
      process.stdin.on("end", () => handle.closeStdin());
    } else {
      handle.closeStdin();
    }
    const pump = async (from: AsyncIterable<Uint8Array>, to: NodeJS.WriteStream): Promise<void> => {
      for await (const chunk of from) if (!to.write(chunk)) await new Promise((r) => to.once("drain", r));
    };
    const [, , result] = await Promise.all([pump(handle.stdout, process.stdout), pump(handle.stderr, process.stderr), handle.wait().catch((e: unknown) => e)]);
    // A full disk never changes the exit code (the command decided what ENOSPC meant); it is said after the output.
    const ended = (result instanceof LuminaError ? result.details?.result : result) as ExecResult | undefined;
    if (ended?.diskFull) printError(diskFullError(spec.limits.diskBytes));
    if (result instanceof LuminaError) {
      printError(result);
      if (result.code === "E_EXEC_TIMEOUT") return EXIT.timeout;
      if (result.code === "E_EXEC_ABORTED") return 130;
      const inner = result.details?.result as { exitCode: number | null; signal: NodeJS.Signals | null } | undefined;
      if (inner) return inner.exitCode ?? signalToExitCode(inner.signal);
      return EXIT.runtime;
    }
    if (result instanceof Error) throw result;
    const res = result as { exitCode: number | null; signal: NodeJS.Signals | null };
    return res.exitCode ?? signalToExitCode(res.signal);
  } finally {
    process.removeListener("SIGINT", onSigint);
    process.removeListener("SIGTERM", onSigint);
    process.stdin.pause();
    await sandbox.destroy();
    await backend.close?.();
  }
}

/** The `exec` command. */
export function execCommand(): Command {
  return new Command("exec")
    .description("Run one command in a fresh, disposable sandbox and destroy the sandbox afterwards.")
    .argument("<command...>", "the command and its arguments (put them after --)")
    .addOption(new Option("--backend <name>", "isolation backend").choices(["namespace", "microvm", "gvisor"]))
    .option("--memory <size>", "memory limit for the whole sandbox, e.g. 256M, 1G (default 512M)")
    .option("--disk <size>", "size of the sandbox's /tmp and /workspace together, e.g. 64M, 2G (default 1G; in RAM on the namespace backend, counted in --memory; not a --workspace folder)")
    .option("--cpus <n>", "CPU quota in cores, e.g. 0.5 (default 1)")
    .option("--pids <n>", "maximum processes and threads, including the launcher's 2 (default 256)")
    .option("--timeout <duration>", "kill the command and everything it started after this long, e.g. 30s, 2m")
    .addOption(new Option("--seccomp <level>", "system call allow-list").choices(["strict", "default", "permissive"]))
    .addOption(new Option("--seccomp-mode <mode>", "enforce: blocked calls fail with EPERM; log: unlisted calls are allowed and logged by the kernel").choices(["enforce", "log"]))
    .option("--workspace <dir>", "host folder to mount read-write at /workspace (default: a fresh empty folder, deleted afterwards)")
    .option("--cwd <path>", "working directory inside the sandbox (default /workspace)")
    .option("-e, --env <KEY=VALUE>", "set an environment variable inside (repeatable); nothing is inherited from the host", collectRepeated, [])
    .option("--net <policy>", 'network policy: "none" (default), a JSON policy, or @FILE holding one (see docs/firewall.md)')
    .option("--allow <dest>", "allow egress to DEST[:PORTS][/PROTO], e.g. 10.0.0.5:443, 10.1.0.0/16:80-90/udp (repeatable)", collectRepeated, [])
    .option("--allow-domain <name>", "allow HTTP(S) to a domain through the egress proxy, e.g. api.example.com, *.example.org (repeatable)", collectRepeated, [])
    .option("--dns <ip>", "the only DNS resolver the sandbox may query (repeatable)", collectRepeated, [])
    .addOption(new Option("--net-mode <mode>", "enforce: drop what is not allowed; test: allow but log and count it; disabled: no filtering (loud warning)").choices(["enforce", "test", "disabled"]))
    .option("--config <file>", "config file (default ~/.config/luminaguard/config.json)")
    .passThroughOptions()
    .addHelpText("after", HELP_AFTER)
    .action(async (argv: string[], flags: ExecFlags) => {
      process.exitCode = await runExec(argv, flags);
    });
}
