import { LuminaError } from "../../errors.js";

/** Stable codes of cgroup-limit errors. */
export type LimitsErrorCode =
  | "E_CGROUP_UNAVAILABLE" // no cgroup hierarchy we may write to on this host
  | "E_CGROUP_SETUP" // creating the sandbox's cgroup or writing a limit failed
  | "E_CGROUP_CLEANUP" // a sandbox's cgroup could not be emptied or removed
  | "E_CGROUP_DESTROYED" // the sandbox's cgroup was used after destroy() or vanished
  | "E_LIMITS_INVALID"; // a limit value or sandbox id is out of range

/** An error from setting up, using or removing a sandbox's cgroup. */
export class LimitsError extends LuminaError {
  declare readonly code: LimitsErrorCode;

  constructor(code: LimitsErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(code, message, options);
  }
}

/** What a user can do when no cgroup hierarchy is writable; appended to E_CGROUP_UNAVAILABLE. */
export const CGROUP_UNAVAILABLE_HINT =
  "Run LuminaGuard as root, or on cgroup v2 start it in a delegated subtree of its own " +
  "(e.g. `systemd-run --user --scope -p Delegate=yes luminaguard ...`, or `systemd-run --scope -p Delegate=yes` as root), " +
  "or disable sandbox limits.";
