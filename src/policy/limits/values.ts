/**
 * Turning CgroupLimits into cgroup file contents: validation and the exact
 * writes per cgroup version. Pure, so the arithmetic is unit-tested.
 */
import type { CgroupLimits } from "../../sandbox/types.js";
import { LimitsError } from "./errors.js";

/** Below this, the launcher, bwrap and a shell cannot even start. */
export const MIN_MEMORY_BYTES = 4 * 1024 * 1024;
/** The CFS period we always use; 100 ms is the kernel default and keeps quota math readable. */
export const CPU_PERIOD_US = 100_000;
/** The kernel rejects CFS quotas below 1 ms. */
export const MIN_CPU_QUOTA_US = 1_000;
/** PID_MAX_LIMIT on 64-bit kernels: pids.max refuses anything larger. */
export const MAX_PIDS = 4_194_304;

/** The numbers written to the cgroup files. */
export interface LimitValues {
  memoryBytes: number;
  pidsMax: number;
  cpuQuotaUs: number;
  cpuPeriodUs: number;
}

/** Validate limits and compute the cgroup values; throws E_LIMITS_INVALID with the offending field. */
export function limitValues(limits: CgroupLimits): LimitValues {
  const { memoryBytes, pids, cpus } = limits;
  if (!Number.isSafeInteger(memoryBytes) || memoryBytes < MIN_MEMORY_BYTES) {
    throw invalid(`memory limit must be a whole number of bytes of at least ${MIN_MEMORY_BYTES} (4 MiB), got ${String(memoryBytes)}.`, "memoryBytes", memoryBytes);
  }
  if (!Number.isSafeInteger(pids) || pids < 1 || pids > MAX_PIDS) {
    throw invalid(`pids limit must be a whole number from 1 to ${MAX_PIDS}, got ${String(pids)}.`, "pids", pids);
  }
  if (typeof cpus !== "number" || !Number.isFinite(cpus) || cpus <= 0) {
    throw invalid(`cpus must be a positive number of cores (0.5 = half a core), got ${String(cpus)}.`, "cpus", cpus);
  }
  const cpuQuotaUs = Math.round(cpus * CPU_PERIOD_US);
  if (cpuQuotaUs < MIN_CPU_QUOTA_US) {
    throw invalid(`cpus must be at least ${MIN_CPU_QUOTA_US / CPU_PERIOD_US} (the kernel's smallest CFS quota), got ${cpus}.`, "cpus", cpus);
  }
  return { memoryBytes, pidsMax: pids, cpuQuotaUs, cpuPeriodUs: CPU_PERIOD_US };
}

function invalid(message: string, field: string, value: unknown): LimitsError {
  return new LimitsError("E_LIMITS_INVALID", `Invalid sandbox limit: ${message}`, { details: { field, value } });
}

/** Sandbox ids become directory names: refuse anything that could escape or collide oddly. */
export function validateSandboxId(id: string): void {
  if (typeof id !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id)) {
    throw new LimitsError("E_LIMITS_INVALID", `Invalid sandbox id ${JSON.stringify(id)}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit.`, { details: { id } });
  }
}

export type LimitController = "memory" | "pids" | "cpu";

/** One cgroup file write. */
export interface LimitWrite {
  controller: LimitController;
  file: string;
  value: string;
  /** Failure is ignored: the file is missing without swap accounting, or is a nicety. */
  optional: boolean;
}

/**
 * The writes that apply `v`, as chains: writes inside a chain run in order,
 * chains run in parallel. v1 needs memory.limit_in_bytes before
 * memory.memsw.limit_in_bytes because the kernel insists memsw >= memory.
 */
export function limitWrites(version: 1 | 2, v: LimitValues): LimitWrite[][] {
  const w = (controller: LimitController, file: string, value: number | string, optional = false): LimitWrite => ({ controller, file, value: String(value), optional });
  if (version === 1) {
    return [
      [w("memory", "memory.limit_in_bytes", v.memoryBytes), w("memory", "memory.memsw.limit_in_bytes", v.memoryBytes, true)],
      [w("memory", "memory.swappiness", 0, true)],
      [w("pids", "pids.max", v.pidsMax)],
      [w("cpu", "cpu.cfs_period_us", v.cpuPeriodUs), w("cpu", "cpu.cfs_quota_us", v.cpuQuotaUs)],
    ];
  }
  return [
    [w("memory", "memory.max", v.memoryBytes)],
    [w("memory", "memory.swap.max", 0, true)],
    [w("pids", "pids.max", v.pidsMax)],
    [w("cpu", "cpu.max", `${v.cpuQuotaUs} ${v.cpuPeriodUs}`)],
  ];
}
