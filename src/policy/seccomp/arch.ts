// The architectures the compiler targets and their syscall tables.
import { SeccompError } from "./errors.js";
import { SYSCALLS_AARCH64 } from "./syscalls-aarch64.js";
import { SYSCALLS_X86_64 } from "./syscalls-x86_64.js";

export type Arch = "x86_64" | "aarch64";

export const ARCHES: readonly Arch[] = ["x86_64", "aarch64"];

/** AUDIT_ARCH_* values the kernel puts in seccomp_data.arch (EM_* | 64BIT | LE). */
export const AUDIT_ARCH: Readonly<Record<Arch, number>> = {
  x86_64: 0xc000003e,
  aarch64: 0xc00000b7,
};

/**
 * x86_64 syscalls with this bit set use the x32 ABI: same kernel entry points
 * under other numbers, so a filter that checks numbers must refuse them.
 */
export const X32_SYSCALL_BIT = 0x40000000;

const TABLES: Readonly<Record<Arch, Readonly<Record<string, number>>>> = {
  x86_64: SYSCALLS_X86_64,
  aarch64: SYSCALLS_AARCH64,
};

/** The name → number table of an arch. */
export function syscallTable(arch: Arch): Readonly<Record<string, number>> {
  const table = TABLES[arch];
  if (table === undefined) {
    throw new SeccompError("E_SECCOMP_ARCH", `No syscall table for arch "${String(arch)}"; use one of ${ARCHES.join(", ")}.`);
  }
  return table;
}

/** The number of a syscall on an arch, or undefined when the arch does not have it. */
export function syscallNumber(arch: Arch, name: string): number | undefined {
  const table = syscallTable(arch);
  return Object.hasOwn(table, name) ? table[name] : undefined;
}

/** True when the name is a syscall on at least one supported arch. */
export function isKnownSyscall(name: string): boolean {
  return ARCHES.some((arch) => syscallNumber(arch, name) !== undefined);
}

/** Every syscall name known on at least one supported arch, sorted. */
export function knownSyscalls(): string[] {
  return [...new Set(ARCHES.flatMap((arch) => Object.keys(syscallTable(arch))))].sort();
}

/** The arch of the running Node process; throws E_SECCOMP_ARCH on others. */
export function hostArch(): Arch {
  if (process.arch === "x64") return "x86_64";
  if (process.arch === "arm64") return "aarch64";
  throw new SeccompError(
    "E_SECCOMP_ARCH",
    `Seccomp profiles exist only for x86_64 and aarch64, but this host is "${process.arch}"; run the sandbox without seccomp or on a supported host.`,
  );
}
