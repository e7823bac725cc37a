// The compiler's output shape: exact programs for hand-made profiles, long
// jumps, size limits, and the errors callers see.
import { describe, expect, it } from "vitest";
import {
  BPF_ABS,
  BPF_JA,
  BPF_JEQ,
  BPF_JGE,
  BPF_JMP,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_W,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_LOG,
  decodeProgram,
  jump,
  ret,
  runFilter,
  stmt,
} from "../../src/policy/seccomp/bpf.js";
import type { Instruction } from "../../src/policy/seccomp/bpf.js";
import { compile, compileProfile } from "../../src/policy/seccomp/compiler.js";
import { hostArch, knownSyscalls, syscallNumber } from "../../src/policy/seccomp/arch.js";
import { SYSCALLS_AARCH64 } from "../../src/policy/seccomp/syscalls-aarch64.js";
import { SYSCALLS_X86_64 } from "../../src/policy/seccomp/syscalls-x86_64.js";
import { SeccompError } from "../../src/policy/seccomp/errors.js";
import { resolveProfile } from "../../src/policy/seccomp/resolve.js";
import type { ResolvedProfile, SyscallPolicy } from "../../src/policy/seccomp/rules.js";
import { argAnyBits, argEq } from "../../src/policy/seccomp/rules.js";

const EPERM_RET = 0x00050001;
const ld = (k: number): Instruction => stmt(BPF_LD | BPF_W | BPF_ABS, k);
const jge = (k: number, jt: number, jf: number): Instruction => jump(BPF_JMP | BPF_JGE | BPF_K, k, jt, jf);
const allow: SyscallPolicy = { rules: [], otherwise: "allow" };
const block: SyscallPolicy = { rules: [], otherwise: "block" };

function profile(mode: "enforce" | "log", entries: Record<string, SyscallPolicy>, blockedAction: "errno" | "kill" = "errno"): ResolvedProfile {
  return { mode, blockedAction, syscalls: new Map(Object.entries(entries)) };
}

function thrown(fn: () => unknown): SeccompError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SeccompError) return err;
    throw err;
  }
  throw new Error("expected a SeccompError");
}

describe("exact programs", () => {
  it("x86_64: arch check, x32 check, then a binary search over merged number ranges", () => {
    // read=0, write=1 allowed; ptrace=101 blocked; the rest logged.
    // Ranges: [0,2) ALLOW, [2,101) LOG, [101,102) EPERM, [102,∞) LOG.
    const program = compile(profile("log", { read: allow, write: allow, ptrace: block }), "x86_64");
    expect(program).toEqual([
      ld(4),
      jump(BPF_JMP | BPF_JEQ | BPF_K, 0xc000003e, 1, 0),
      ret(SECCOMP_RET_KILL_PROCESS),
      ld(0),
      jge(0x40000000, 0, 1),
      ret(EPERM_RET),
      jge(101, 3, 0),
      jge(2, 1, 0),
      ret(SECCOMP_RET_ALLOW),
      ret(SECCOMP_RET_LOG),
      jge(102, 1, 0),
      ret(EPERM_RET),
      ret(SECCOMP_RET_LOG),
    ]);
  });

  it("aarch64: no x32 check, generic-table numbers", () => {
    // read=63, write=64, ptrace=117.
    const program = compile(profile("log", { read: allow, write: allow, ptrace: block }), "aarch64");
    expect(program).toEqual([
      ld(4),
      jump(BPF_JMP | BPF_JEQ | BPF_K, 0xc00000b7, 1, 0),
      ret(SECCOMP_RET_KILL_PROCESS),
      ld(0),
      // Leaves: [0,63) LOG, [63,65) ALLOW, [65,117) LOG, [117,118) EPERM, [118,∞) LOG.
      jge(65, 3, 0),
      jge(63, 1, 0),
      ret(SECCOMP_RET_LOG),
      ret(SECCOMP_RET_ALLOW),
      jge(117, 1, 0),
      ret(SECCOMP_RET_LOG),
      jge(118, 1, 0),
      ret(EPERM_RET),
      ret(SECCOMP_RET_LOG),
    ]);
  });

  it("an argument rule becomes a leaf of loads and tests on the low word", () => {
    // clone=56 is allowed unless a namespace bit is set; in enforce mode the
    // blocked and default actions are both EPERM, so only three leaves remain.
    const clone: SyscallPolicy = { rules: [{ when: [argAnyBits(0, 0x10000000)], then: "block" }], otherwise: "allow" };
    const program = compile(profile("enforce", { clone }), "x86_64");
    expect(program.slice(6)).toEqual([
      jge(56, 1, 0),
      ret(EPERM_RET),
      jge(57, 4, 0),
      ld(16),
      jump(BPF_JMP | BPF_JSET | BPF_K, 0x10000000, 0, 1),
      ret(EPERM_RET),
      ret(SECCOMP_RET_ALLOW),
      ret(EPERM_RET),
    ]);
  });

  it("a multi-condition rule skips the rest of the rule on the first failing test", () => {
    const socket: SyscallPolicy = { rules: [{ when: [argEq(0, 2), argEq(1, 3)], then: "block" }], otherwise: "allow" };
    const program = compile(profile("enforce", { socket }), "x86_64");
    const leaf = program.slice(program.findIndex((i) => i.code === (BPF_LD | BPF_W | BPF_ABS) && i.k === 16));
    expect(leaf.slice(0, 6)).toEqual([
      ld(16),
      jump(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 3),
      ld(24),
      jump(BPF_JMP | BPF_JEQ | BPF_K, 3, 0, 1),
      ret(EPERM_RET),
      ret(SECCOMP_RET_ALLOW),
    ]);
  });

  it("merges neighbouring syscalls with the same decision into one leaf", () => {
    const entries = Object.fromEntries(["read", "write", "open", "close", "stat"].map((n) => [n, allow])); // 0..4
    const program = compile(profile("enforce", entries), "x86_64");
    expect(program.slice(6)).toEqual([jge(5, 1, 0), ret(SECCOMP_RET_ALLOW), ret(EPERM_RET)]);
  });

  it("the kill action replaces EPERM for blocked, x32 and (in enforce mode) unlisted calls", () => {
    const program = compile(profile("enforce", { read: allow }, "kill"), "x86_64");
    expect(program.slice(4)).toEqual([
      jge(0x40000000, 0, 1),
      ret(SECCOMP_RET_KILL_PROCESS),
      jge(1, 1, 0),
      ret(SECCOMP_RET_ALLOW),
      ret(SECCOMP_RET_KILL_PROCESS),
    ]);
  });
});

describe("long programs", () => {
  // 120 syscalls whose leaves differ (the tested value is the syscall number),
  // so nothing merges and the root's left subtree is far longer than 255.
  const names = Object.keys(SYSCALLS_X86_64).slice(0, 120);
  const entries = Object.fromEntries(names.map((n) => [n, { rules: [{ when: [argEq(0, SYSCALLS_X86_64[n] ?? 0)], then: "allow" }], otherwise: "block" } as SyscallPolicy]));
  const program = compile(profile("log", entries), "x86_64");

  it("uses `jge k,0,1; ja len` where a subtree is too far for an 8-bit offset", () => {
    expect(program.some((i) => i.code === (BPF_JMP | BPF_JA))).toBe(true);
    expect(program.length).toBeGreaterThan(2 * 255);
  });

  it("still decides every syscall correctly", () => {
    for (const name of names) {
      const nr = SYSCALLS_X86_64[name] ?? -1;
      expect(runFilter(program, { nr, arch: 0xc000003e, args: [BigInt(nr)] })).toBe(SECCOMP_RET_ALLOW);
      expect(runFilter(program, { nr, arch: 0xc000003e, args: [BigInt(nr + 1)] })).toBe(EPERM_RET);
    }
    expect(runFilter(program, { nr: 400, arch: 0xc000003e })).toBe(SECCOMP_RET_LOG);
  });

  it("throws E_SECCOMP_PROGRAM_TOO_LARGE past BPF_MAXINSNS", () => {
    const big = Object.fromEntries(
      Object.keys(SYSCALLS_X86_64).map((n, i) => [
        n,
        { rules: Array.from({ length: 4 }, (_, j) => ({ when: [argEq(0, i * 10 + j)], then: "allow" as const })), otherwise: "block" } as SyscallPolicy,
      ]),
    );
    expect(thrown(() => compile(profile("log", big), "x86_64")).code).toBe("E_SECCOMP_PROGRAM_TOO_LARGE");
  });

  it("throws E_SECCOMP_JUMP_RANGE when one rule's tests are longer than a conditional jump", () => {
    const when = Array.from({ length: 130 }, (_, i) => argEq(i % 6, i));
    const err = thrown(() => compile(profile("log", { read: { rules: [{ when, then: "block" }], otherwise: "allow" } }), "x86_64"));
    expect(err.code).toBe("E_SECCOMP_JUMP_RANGE");
  });
});

describe("compileProfile", () => {
  it("returns raw sock_filter bytes that decode to the compiled program", () => {
    const bytes = compileProfile({ level: "strict", mode: "enforce", arch: "x86_64" });
    expect(bytes.length % 8).toBe(0);
    expect(decodeProgram(bytes)).toEqual(compile(resolveProfile({ level: "strict", mode: "enforce" }), "x86_64"));
  });

  it("defaults to the host arch", () => {
    expect(compileProfile({ level: "default", mode: "enforce" })).toEqual(compileProfile({ level: "default", mode: "enforce", arch: hostArch() }));
  });

  it("rejects unknown syscall names with a suggestion", () => {
    const err = thrown(() => compileProfile({ level: "strict", mode: "enforce", arch: "x86_64", extraAllow: ["flok", "getdents64"] }));
    expect(err.code).toBe("E_SECCOMP_UNKNOWN_SYSCALL");
    expect(err.message).toContain('"flok" (did you mean "flock"?)');
    expect(err.details).toEqual({ field: "extraAllow", unknown: ["flok"] });
    expect(thrown(() => compileProfile({ level: "strict", mode: "enforce", extraBlock: ["definitely_not_a_syscall"] })).code).toBe(
      "E_SECCOMP_UNKNOWN_SYSCALL",
    );
  });

  it("accepts names that exist on only one arch and skips them on the other", () => {
    const bytes = compileProfile({ level: "strict", mode: "enforce", arch: "aarch64", extraBlock: ["open"] });
    expect(syscallNumber("aarch64", "open")).toBeUndefined();
    expect(bytes).toEqual(compileProfile({ level: "strict", mode: "enforce", arch: "aarch64" }));
  });

  it("refuses to allow floor syscalls", () => {
    for (const name of ["ptrace", "mount", "clone3", "io_uring_setup"]) {
      const err = thrown(() => compileProfile({ level: "permissive", mode: "log", arch: "x86_64", extraAllow: [name] }));
      expect(err.code).toBe("E_SECCOMP_ALWAYS_BLOCKED");
      expect(err.message).toContain(name);
    }
  });

  it("rejects bad options and arches", () => {
    const bad = (o: unknown) => thrown(() => compileProfile(o as Parameters<typeof compileProfile>[0])).code;
    expect(bad({ level: "paranoid", mode: "enforce", arch: "x86_64" })).toBe("E_SECCOMP_OPTIONS");
    expect(bad({ level: "strict", mode: "audit", arch: "x86_64" })).toBe("E_SECCOMP_OPTIONS");
    expect(bad({ level: "strict", mode: "enforce", arch: "x86_64", blockedAction: "trap" })).toBe("E_SECCOMP_OPTIONS");
    expect(bad({ level: "strict", mode: "enforce", arch: "riscv64" })).toBe("E_SECCOMP_ARCH");
  });
});

describe("syscall tables", () => {
  it("have the kernel's numbers for well-known calls", () => {
    expect(SYSCALLS_X86_64).toMatchObject({ read: 0, open: 2, clone: 56, ptrace: 101, openat: 257, clone3: 435, mseal: 462, file_setattr: 469 });
    expect(SYSCALLS_AARCH64).toMatchObject({ io_setup: 0, openat: 56, ptrace: 117, clone: 220, mmap: 222, clone3: 435, mseal: 462 });
    for (const legacy of ["open", "stat", "fork", "vfork", "pipe", "poll", "arch_prctl"]) {
      expect(SYSCALLS_AARCH64[legacy], legacy).toBeUndefined();
    }
  });

  it("map each number to one name", () => {
    for (const table of [SYSCALLS_X86_64, SYSCALLS_AARCH64]) {
      const numbers = Object.values(table);
      expect(new Set(numbers).size).toBe(numbers.length);
      expect(Math.max(...numbers)).toBeLessThan(512);
    }
    expect(knownSyscalls().length).toBeGreaterThan(380);
  });
});
