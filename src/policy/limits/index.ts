/** Per-sandbox cgroup limits (memory, pids, CPU) on cgroup v2 or v1. */
export { LimitsError, type LimitsErrorCode } from "./errors.js";
export { detectCgroups, resetCgroupDetection, type CgroupHost, type CgroupHierarchy } from "./detect.js";
export { createSandboxCgroup, type SandboxCgroup, type CgroupUsage, type CgroupEvents } from "./cgroup.js";
export { enterCgroupArgv } from "./enter.js";
export { sweepStaleCgroups } from "./sweep.js";
export { limitValues, MIN_MEMORY_BYTES, CPU_PERIOD_US, type LimitValues } from "./values.js";
export { ownOwnerName, parseOwnerName, ownerAlive } from "./owner.js";
