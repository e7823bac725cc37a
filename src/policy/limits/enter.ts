/**
 * The launcher that puts a process into its cgroup before it runs anything.
 *
 * Node cannot run code between fork and exec, so the child is `/bin/sh`, which
 * writes its own pid ($$) into each cgroup.procs and then execs the real argv
 * with the same pid. Everything the sandbox does therefore happens inside the
 * cgroup; there is no window in which it runs unlimited. Paths and argv travel
 * as positional parameters, never inside the script text, so no quoting of
 * them can break out into the shell.
 */
import { LimitsError } from "./errors.js";

/** $1 is the number of procs files; they follow; the rest is the argv to exec. */
export const ENTER_SCRIPT =
  'n=$1; shift; while [ "$n" -gt 0 ]; do ' +
  'echo $$ > "$1" || { echo "luminaguard: cannot enter cgroup $1" >&2; exit 125; }; ' +
  'n=$((n - 1)); shift; done; exec "$@"';

/** $0 of the wrapper shell, so it is recognisable in ps and in error messages. */
const ARGV0 = "luminaguard-enter-cgroup";

/** The argv that runs `argv` inside the cgroups whose procs files are given (exit 125 when entering fails). */
export function enterCgroupArgv(procsFiles: readonly string[], argv: readonly string[]): string[] {
  if (argv.length === 0) {
    throw new LimitsError("E_LIMITS_INVALID", "enterCgroupArgv needs a command to run (argv is empty).");
  }
  for (const f of procsFiles) {
    if (!f.startsWith("/") || f.includes("\0")) {
      throw new LimitsError("E_LIMITS_INVALID", `cgroup.procs path must be absolute and without NUL bytes, got ${JSON.stringify(f)}.`);
    }
  }
  // bash (the /bin/sh of some distributions) would parse a leading "-" as an option of exec.
  if (argv[0]!.startsWith("-")) {
    throw new LimitsError("E_LIMITS_INVALID", `The command must not start with "-", got ${JSON.stringify(argv[0])}.`);
  }
  if (argv.some((a) => a.includes("\0"))) {
    throw new LimitsError("E_LIMITS_INVALID", "argv must not contain NUL bytes.");
  }
  return ["/bin/sh", "-c", ENTER_SCRIPT, ARGV0, String(procsFiles.length), ...procsFiles, ...argv];
}
