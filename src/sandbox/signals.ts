import { constants } from "node:os";

const byNumber = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, num]) => [num, name as NodeJS.Signals]),
);

/** The signal name for a number, e.g. 9 → "SIGKILL". */
export function signalName(num: number): NodeJS.Signals | null {
  return byNumber.get(num) ?? null;
}

/**
 * Launchers such as bwrap and shells report "child killed by signal N" as exit code
 * 128+N. We read it back the same way; a command that deliberately exits 137 is
 * therefore reported as SIGKILL, the shell convention.
 */
export function signalFromExitCode(code: number | null): NodeJS.Signals | null {
  if (code === null || code <= 128 || code > 128 + 64) return null;
  return signalName(code - 128);
}
