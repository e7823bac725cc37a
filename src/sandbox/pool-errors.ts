/** The typed errors of the warm pool, each with a message that says what to do. */
import { UsageError } from "../errors.js";
import { SandboxError } from "./errors.js";

/** Validate a wait limit in ms (>= 0, Infinity allowed). */
export function checkTimeout(ms: number, name: string): number {
  if (!(ms >= 0)) throw new UsageError(`${name} must be a number of milliseconds >= 0 (or Infinity), got ${ms}.`);
  return ms;
}

/** E_POOL_FULL: `max` sandboxes are active and `maxQueue` callers already wait. */
export function poolFullError(max: number, maxQueue: number, active: number, queued: number): SandboxError {
  return new SandboxError(
    "E_POOL_FULL",
    `The sandbox pool is full: ${active} sandboxes active (max ${max}) and ${queued} callers already waiting ` +
      `(maxQueue ${maxQueue}). Raise pool.max or pool.maxQueue in the config, or retry later.`,
    { details: { max, maxQueue, active, queued } },
  );
}

/** E_POOL_CLOSED: the pool no longer hands out sandboxes. */
export function poolClosedError(): SandboxError {
  return new SandboxError(
    "E_POOL_CLOSED",
    "The sandbox pool is closed (the runtime is shutting down); start the runtime again to run more tasks.",
  );
}

/** E_POOL_ABORTED: the caller's AbortSignal fired while it waited. */
export function poolAbortedError(signal: AbortSignal | undefined): SandboxError {
  return new SandboxError(
    "E_POOL_ABORTED",
    "Stopped waiting for a sandbox because the caller aborted; nothing to fix unless the abort was unexpected.",
    { cause: signal?.reason },
  );
}

/** E_POOL_TIMEOUT: no sandbox became free within the wait limit. */
export function poolTimeoutError(ms: number): SandboxError {
  return new SandboxError(
    "E_POOL_TIMEOUT",
    `Waited ${ms} ms for a sandbox from the pool without getting one. ` +
      "Raise pool.max (more sandboxes at once) or the lease timeout, or retry later.",
    { details: { timeoutMs: ms } },
  );
}
