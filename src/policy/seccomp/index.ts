// Public API of the seccomp profile compiler.
export { compileProfile, compile, actionFor, EPERM, ENOSYS } from "./compiler.js";
export type { CompileOptions } from "./compiler.js";
export { resolveProfile } from "./resolve.js";
export type { ProfileOptions } from "./resolve.js";
export { LEVELS, SECCOMP_LEVELS, SECCOMP_MODES, ALWAYS_BLOCKED, ALWAYS_ENOSYS, FLOOR_ARG_RULES } from "./profile.js";
export type { SeccompLevel, SeccompMode } from "./profile.js";
export { CATEGORIES, CATEGORY_NAMES } from "./categories.js";
export type { Category, CategoryName } from "./categories.js";
export type { ArgCondition, ArgRule, BlockedAction, Outcome, ResolvedProfile, SyscallPolicy } from "./rules.js";
export { ARCHES, AUDIT_ARCH, hostArch, isKnownSyscall, knownSyscalls, syscallNumber, syscallTable } from "./arch.js";
export type { Arch } from "./arch.js";
export {
  decodeProgram,
  encodeProgram,
  formatProgram,
  runFilter,
  validateProgram,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_LOG,
} from "./bpf.js";
export type { Instruction, SeccompData } from "./bpf.js";
export { SeccompError } from "./errors.js";
export type { SeccompErrorCode } from "./errors.js";
