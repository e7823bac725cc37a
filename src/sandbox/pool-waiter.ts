/**
 * A caller of `SandboxPool.lease()` that could not be served at once: its promise,
 * its timeout and its abort listener, with one place that clears both.
 */
import type { SandboxError } from "./errors.js";
import type { Lease } from "./pool-types.js";

export interface Waiter {
  readonly startedAt: number;
  readonly promise: Promise<Lease>;
  settled: boolean;
  resolve(lease: Lease): void;
  reject(err: unknown): void;
  /** Clears the timeout and the abort listener. */
  cleanup(): void;
}

/** A waiter that calls `giveUp` with the matching error on timeout or abort. */
export function createWaiter(
  startedAt: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  errors: { timeout: () => SandboxError; aborted: () => SandboxError },
  giveUp: (waiter: Waiter, err: SandboxError) => void,
): Waiter {
  let resolve!: (lease: Lease) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<Lease>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  let timer: NodeJS.Timeout | undefined;
  const onAbort = () => giveUp(waiter, errors.aborted());
  const waiter: Waiter = {
    startedAt,
    promise,
    settled: false,
    resolve,
    reject,
    cleanup: () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    },
  };
  // Kept referenced: a caller is actively waiting on it, so the process should not exit under it.
  if (Number.isFinite(timeoutMs)) timer = setTimeout(() => giveUp(waiter, errors.timeout()), timeoutMs);
  signal?.addEventListener("abort", onAbort, { once: true });
  return waiter;
}
