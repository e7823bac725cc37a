import { constants } from "node:os";

/** Shell convention: a process killed by signal N exits 128+N. */
export function signalToExitCode(signal: NodeJS.Signals | null): number {
  if (!signal) return 1;
  return 128 + (constants.signals[signal] ?? 0);
}
