// Bad input to the seccomp compiler, and its decided behaviour on the whole
// 32-bit syscall-number space. test/unit/seccomp-property.test.ts checks random
// valid profiles on numbers 0..500 against a reference; this file adds what it
// does not: hostile options (unknown names, prototype keys, wrong types) that must
// give a SeccompError with a stable code, and shrinking counterexamples over any
// syscall number and argument vector.
import { describe, expect, it } from "vitest";
import { ARCHES, AUDIT_ARCH, knownSyscalls, syscallTable, type Arch } from "../../src/policy/seccomp/arch.js";
import { decodeProgram, runFilter } from "../../src/policy/seccomp/bpf.js";
import { compile, compileProfile } from "../../src/policy/seccomp/compiler.js";
import { SeccompError } from "../../src/policy/seccomp/errors.js";
import { ALWAYS_BLOCKED, ALWAYS_ENOSYS, FLOOR_ARG_RULES, LEVELS } from "../../src/policy/seccomp/profile.js";
import { CATEGORIES } from "../../src/policy/seccomp/categories.js";
import type { ArgCondition, ArgRule, Outcome, ResolvedProfile, SyscallPolicy } from "../../src/policy/seccomp/rules.js";
import { fc, runs } from "./settings.js";

const ALLOW = 0x7fff0000;
const LOG = 0x7ffc0000;
const KILL_PROCESS = 0x80000000;
const EPERM = 0x00050001;
const ENOSYS = 0x00050026;

const names = knownSyscalls();
const NAMES_BY_NR: Record<Arch, Map<number, string>> = {
  x86_64: new Map(Object.entries(syscallTable("x86_64")).map(([n, nr]) => [nr, n])),
  aarch64: new Map(Object.entries(syscallTable("aarch64")).map(([n, nr]) => [nr, n])),
};
const SEC_CODES = ["E_SECCOMP_UNKNOWN_SYSCALL", "E_SECCOMP_ALWAYS_BLOCKED", "E_SECCOMP_OPTIONS", "E_SECCOMP_ARCH", "E_SECCOMP_JUMP_RANGE", "E_SECCOMP_PROGRAM_TOO_LARGE", "E_SECCOMP_INVALID_PROGRAM"];

const u32 = fc.oneof(fc.constantFrom(0, 1, 2, 0x10000000, 0x80000000, 0xffffffff), fc.nat({ max: 0xffffffff }));
const arg64 = fc.tuple(u32, u32).map(([hi, lo]) => (BigInt(hi) << 32n) | BigInt(lo));
const condition: fc.Arbitrary<ArgCondition> = fc.oneof(
  fc.record({ arg: fc.nat({ max: 5 }), op: fc.constant("eq" as const), value: u32 }),
  fc.record({ arg: fc.nat({ max: 5 }), op: fc.constant("maskedEq" as const), mask: u32, value: u32 }),
  fc.record({ arg: fc.nat({ max: 5 }), op: fc.constant("anyBits" as const), mask: u32 }),
);
const rule: fc.Arbitrary<ArgRule> = fc.record({ when: fc.array(condition, { maxLength: 3 }), then: fc.constantFrom("allow" as const, "block" as const) });
const policy: fc.Arbitrary<SyscallPolicy> = fc.record({ rules: fc.array(rule, { maxLength: 3 }), otherwise: fc.constantFrom<Outcome>("allow", "block", "enosys", "default") });
const profile: fc.Arbitrary<ResolvedProfile> = fc.record({
  mode: fc.constantFrom("enforce" as const, "log" as const),
  blockedAction: fc.constantFrom("errno" as const, "kill" as const),
  syscalls: fc.array(fc.tuple(fc.constantFrom(...names), policy), { maxLength: 60 }).map((e) => new Map(e)),
});

/** The low 32 bits of an argument against one condition (seccomp compares the low word). */
function holds(c: ArgCondition, args: readonly bigint[]): boolean {
  const low = Number(BigInt.asUintN(32, args[c.arg] ?? 0n));
  if (c.op === "eq") return low === c.value;
  if (c.op === "maskedEq") return ((low & c.mask) >>> 0) === c.value;
  return ((low & c.mask) >>> 0) !== 0;
}

/** The profile's decision, read off the data: first matching rule, else `otherwise`, else default. */
function expected(p: ResolvedProfile, arch: Arch, nr: number, args: readonly bigint[]): number {
  const act = (o: Outcome): number => (o === "allow" ? ALLOW : o === "enosys" ? ENOSYS : o === "block" || p.mode === "enforce" ? (p.blockedAction === "kill" ? KILL_PROCESS : EPERM) : LOG);
  if (arch === "x86_64" && nr >= 0x40000000) return act("block"); // x32 ABI
  const name = NAMES_BY_NR[arch].get(nr);
  const pol = name === undefined ? undefined : p.syscalls.get(name);
  if (!pol) return act("default");
  return act(pol.rules.find((r) => r.when.every((c) => holds(c, args)))?.then ?? pol.otherwise);
}

describe("seccomp compiler: decided behaviour over any syscall number", () => {
  it("random profiles decide random numbers and arguments as the profile says", () => {
    fc.assert(
      fc.property(profile, fc.constantFrom(...ARCHES), fc.array(fc.tuple(fc.oneof(fc.nat({ max: 500 }), u32), fc.array(arg64, { minLength: 6, maxLength: 6 })), { minLength: 1, maxLength: 40 }), (p, arch, calls) => {
          const program = compile(p, arch);
          // Profiles are sparse here, so also ask about every syscall they name.
          const named = [...p.syscalls.keys()].map((n) => syscallTable(arch)[n]).filter((nr): nr is number => nr !== undefined);
          for (const [nr, args] of [...calls, ...named.map((nr) => [nr, calls[0]![1]] as const)]) {
            expect(runFilter(program, { nr, arch: AUDIT_ARCH[arch], args }), `${arch} nr ${nr} args ${args.join(",")}`).toBe(expected(p, arch, nr, args));
          }
          // Another arch's syscall is always killed.
          expect(runFilter(program, { nr: 0, arch: AUDIT_ARCH[arch === "x86_64" ? "aarch64" : "x86_64"] })).toBe(KILL_PROCESS);
        }),
      { numRuns: runs(200) },
    );
  });
});

describe("seccomp compiler under hostile options", () => {
  const name = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...names) },
    { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "hasOwnProperty", "toString", "", " read", "READ", "read\u0000", "ptrace") },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 16 }) },
  );
  const opts = fc.record({
    level: fc.oneof({ weight: 5, arbitrary: fc.constantFrom("strict", "default", "permissive") }, { weight: 1, arbitrary: fc.anything() }),
    mode: fc.oneof({ weight: 5, arbitrary: fc.constantFrom("enforce", "log") }, { weight: 1, arbitrary: fc.anything() }),
    blockedAction: fc.oneof({ weight: 5, arbitrary: fc.constantFrom("errno", "kill", undefined) }, { weight: 1, arbitrary: fc.anything() }),
    extraAllow: fc.array(name, { maxLength: 8 }),
    extraBlock: fc.array(name, { maxLength: 8 }),
    arch: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...ARCHES) }, { weight: 1, arbitrary: fc.constantFrom("mips", "x86", "", "__proto__") }),
  });

  it("compile to a valid program or fail with a SeccompError code; blocks win, allows hold", () => {
    fc.assert(
      fc.property(opts, (o) => {
        let bytes: Buffer;
        try {
          bytes = compileProfile(o as Parameters<typeof compileProfile>[0]);
        } catch (err) {
          expect(err).toBeInstanceOf(SeccompError);
          expect(SEC_CODES).toContain((err as SeccompError).code);
          expect((err as SeccompError).message.length).toBeGreaterThan(20);
          return;
        }
        const arch = o.arch as Arch;
        const program = decodeProgram(bytes);
        const table = syscallTable(arch);
        const blocked = o.blockedAction === "kill" ? KILL_PROCESS : EPERM;
        for (const n of o.extraBlock) {
          if (table[n] === undefined || Object.hasOwn(ALWAYS_ENOSYS, n)) continue;
          expect(runFilter(program, { nr: table[n], arch: AUDIT_ARCH[arch], args: [0n, 0n, 0n, 0n, 0n, 0n] }), `extraBlock ${n}`).toBe(blocked);
        }
        const levelArgRules = new Set(LEVELS[o.level as "strict"].categories.flatMap((c) => Object.keys((CATEGORIES[c] as { argRules?: Record<string, unknown> }).argRules ?? {})));
        for (const n of o.extraAllow) {
          if (table[n] === undefined || o.extraBlock.includes(n) || n in FLOOR_ARG_RULES || levelArgRules.has(n)) continue;
          expect(Object.hasOwn(ALWAYS_BLOCKED, n) || Object.hasOwn(ALWAYS_ENOSYS, n), `floor syscall ${n} was allowed`).toBe(false);
          expect(runFilter(program, { nr: table[n], arch: AUDIT_ARCH[arch], args: [0n, 0n, 0n, 0n, 0n, 0n] }), `extraAllow ${n}`).toBe(ALLOW);
        }
      }),
    );
  });
});
