import { LuminaError } from "../../errors.js";

/** Stable codes of seccomp errors. */
export type SeccompErrorCode =
  | "E_SECCOMP_UNKNOWN_SYSCALL" // a syscall name is in no arch table (typo, or newer than the tables)
  | "E_SECCOMP_ALWAYS_BLOCKED" // a caller asked to allow a syscall of the hard floor
  | "E_SECCOMP_OPTIONS" // the level, mode or blockedAction is not one of the allowed values
  | "E_SECCOMP_ARCH" // the arch is not one the compiler has a table for
  | "E_SECCOMP_JUMP_RANGE" // a conditional jump would be longer than BPF's 8-bit offset
  | "E_SECCOMP_PROGRAM_TOO_LARGE" // more instructions than the kernel's BPF_MAXINSNS
  | "E_SECCOMP_INVALID_PROGRAM"; // bytes or instructions that the kernel would reject

/** An error from building, encoding or checking a seccomp program. */
export class SeccompError extends LuminaError {
  declare readonly code: SeccompErrorCode;

  constructor(code: SeccompErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(code, message, options);
  }
}
