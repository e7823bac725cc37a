// Property tests: random profiles, compiled and run in the interpreter, must
// decide every syscall number exactly as a direct reading of the profile does.
// The reference evaluators below are written from the profile semantics, not
// from the compiler, so a bug in range merging, the search tree, long jumps or
// rule emission shows up as a mismatch.
import { describe, expect, it } from "vitest";
import { ARCHES, AUDIT_ARCH, knownSyscalls, syscallTable } from "../../src/policy/seccomp/arch.js";
import type { Arch } from "../../src/policy/seccomp/arch.js";
import { BPF_JA, BPF_JMP, BPF_RET, runFilter } from "../../src/policy/seccomp/bpf.js";
import type { Instruction } from "../../src/policy/seccomp/bpf.js";
import { CATEGORIES } from "../../src/policy/seccomp/categories.js";
import type { Category } from "../../src/policy/seccomp/categories.js";
import { compile, compileProfile } from "../../src/policy/seccomp/compiler.js";
import { decodeProgram } from "../../src/policy/seccomp/bpf.js";
import { ALWAYS_BLOCKED, ALWAYS_ENOSYS, FLOOR_ARG_RULES, LEVELS } from "../../src/policy/seccomp/profile.js";
import type { SeccompLevel } from "../../src/policy/seccomp/profile.js";
import type { ArgCondition, ArgRule, Outcome, ResolvedProfile, SyscallPolicy } from "../../src/policy/seccomp/rules.js";
import { prng } from "../helpers/prng.js";

const ALLOW = 0x7fff0000;
const LOG = 0x7ffc0000;
const KILL_PROCESS = 0x80000000;
const EPERM = 0x00050001;
const ENOSYS = 0x00050026;

const INTERESTING = [0, 1, 2, 3, 10, 16, 17, 0x5412, 0x541c, 0x800, 0x80000, 0x10000000, 0x3d0f00, 0x20000, 0xffffffff, 0x80000000];

class Gen {
  constructor(readonly next: () => number) {}
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error("pick from an empty list");
    return item;
  }
  u32(): number {
    return this.next() < 0.7 ? this.pick(INTERESTING) : this.int(0x100000000);
  }
  /** A 64-bit argument: an interesting or random low word, sometimes junk in the high word. */
  arg(): bigint {
    const high = this.next() < 0.3 ? BigInt(this.int(0x100000000)) << 32n : 0n;
    return high | BigInt(this.u32());
  }
  condition(): ArgCondition {
    const arg = this.int(6);
    const kind = this.int(3);
    if (kind === 0) return { arg, op: "eq", value: this.u32() };
    if (kind === 1) return { arg, op: "maskedEq", mask: this.u32(), value: this.u32() };
    return { arg, op: "anyBits", mask: this.u32() };
  }
  rule(): ArgRule {
    const n = this.next() < 0.1 ? 0 : 1 + this.int(3);
    return { when: Array.from({ length: n }, () => this.condition()), then: this.next() < 0.5 ? "allow" : "block" };
  }
  policy(): SyscallPolicy {
    const outcomes: Outcome[] = ["allow", "block", "enosys", "default"];
    const rules = this.next() < 0.15 ? Array.from({ length: 1 + this.int(3) }, () => this.rule()) : [];
    return { rules, otherwise: this.pick(outcomes) };
  }
  subset(names: readonly string[], p: number): string[] {
    return names.filter(() => this.next() < p);
  }
}

function holds(cond: ArgCondition, args: readonly bigint[]): boolean {
  const low = Number(BigInt.asUintN(32, args[cond.arg] ?? 0n));
  if (cond.op === "eq") return low === cond.value;
  if (cond.op === "maskedEq") return ((low & cond.mask) >>> 0) === cond.value;
  return ((low & cond.mask) >>> 0) !== 0;
}

function firstMatch(rules: readonly ArgRule[], args: readonly bigint[]): ArgRule | undefined {
  return rules.find((r) => r.when.every((c) => holds(c, args)));
}

function action(outcome: Outcome, mode: "enforce" | "log", blockedAction: "errno" | "kill"): number {
  const blocked = blockedAction === "kill" ? KILL_PROCESS : EPERM;
  if (outcome === "allow") return ALLOW;
  if (outcome === "block") return blocked;
  if (outcome === "enosys") return ENOSYS;
  return mode === "log" ? LOG : blocked;
}

const NAMES_BY_NR: Record<Arch, Map<number, string>> = {
  x86_64: new Map(Object.entries(syscallTable("x86_64")).map(([name, nr]) => [nr, name])),
  aarch64: new Map(Object.entries(syscallTable("aarch64")).map(([name, nr]) => [nr, name])),
};

/** Reference for `compile`: the profile's decision for one syscall, read straight off the data. */
function expectedResolved(profile: ResolvedProfile, arch: Arch, nr: number, args: readonly bigint[]): number {
  const act = (o: Outcome) => action(o, profile.mode, profile.blockedAction);
  if (arch === "x86_64" && nr >= 0x40000000) return act("block");
  const name = NAMES_BY_NR[arch].get(nr);
  const policy = name === undefined ? undefined : profile.syscalls.get(name);
  if (policy === undefined) return act("default");
  return act(firstMatch(policy.rules, args)?.then ?? policy.otherwise);
}

interface Opts {
  level: SeccompLevel;
  mode: "enforce" | "log";
  blockedAction: "errno" | "kill";
  extraAllow: string[];
  extraBlock: string[];
}

/** Reference for `compileProfile`: the documented precedence applied to the level data. */
function expectedOpts(opts: Opts, arch: Arch, nr: number, args: readonly bigint[]): number {
  const act = (o: Outcome) => action(o, opts.mode, opts.blockedAction);
  if (arch === "x86_64" && nr >= 0x40000000) return act("block");
  const name = NAMES_BY_NR[arch].get(nr);
  if (name === undefined) return act("default");
  if (name in ALWAYS_BLOCKED) return act("block");
  if (name in ALWAYS_ENOSYS) return act("enosys");
  if (opts.extraBlock.includes(name)) return act("block");
  const categories: Category[] = LEVELS[opts.level].categories.map((c) => CATEGORIES[c]);
  const levelRules = categories.flatMap((c) => c.argRules?.[name] ?? []);
  const match = firstMatch([...(FLOOR_ARG_RULES[name]?.rules ?? []), ...levelRules], args);
  if (match !== undefined) return act(match.then);
  const allowed = opts.extraAllow.includes(name) || categories.some((c) => c.syscalls.includes(name));
  return act(allowed ? "allow" : "default");
}

/** Structural checks the kernel makes, written independently of validateProgram. */
function checkShape(program: readonly Instruction[]): void {
  expect(program.length).toBeGreaterThan(0);
  expect(program.length).toBeLessThanOrEqual(4096);
  expect((program[program.length - 1]?.code ?? 0) & 0x07).toBe(BPF_RET);
  program.forEach((ins, pc) => {
    if ((ins.code & 0x07) !== BPF_JMP) return;
    const targets = ins.code === (BPF_JMP | BPF_JA) ? [pc + 1 + ins.k] : [pc + 1 + ins.jt, pc + 1 + ins.jf];
    for (const t of targets) expect(t, `jump at ${pc}`).toBeLessThan(program.length);
    expect(ins.jt).toBeLessThanOrEqual(255);
    expect(ins.jf).toBeLessThanOrEqual(255);
  });
}

const EXTRA_NRS = [0x3fffffff, 0x40000000, 0x40000001, 0x7fffffff, 0x80000000, 0xffffffff, 1000, 4096];

function argVectors(g: Gen, count: number): bigint[][] {
  const out: bigint[][] = [[0n, 0n, 0n, 0n, 0n, 0n]];
  for (let i = 1; i < count; i++) out.push(Array.from({ length: 6 }, () => g.arg()));
  return out;
}

describe("random resolved profiles", () => {
  it("compile to programs that decide syscalls 0..500 as the profile says (200 profiles)", () => {
    const g = new Gen(prng(0x5eccc0));
    const names = knownSyscalls();
    let sawLongJump = false;
    for (let iter = 0; iter < 200; iter++) {
      const arch = g.pick(ARCHES);
      const profile: ResolvedProfile = {
        mode: g.next() < 0.5 ? "enforce" : "log",
        blockedAction: g.next() < 0.5 ? "errno" : "kill",
        syscalls: new Map(g.subset(names, g.next()).map((n) => [n, g.policy()])),
      };
      const program = compile(profile, arch);
      checkShape(program);
      sawLongJump ||= program.some((i) => i.code === (BPF_JMP | BPF_JA));
      for (let nr = 0; nr <= 500; nr++) {
        const name = NAMES_BY_NR[arch].get(nr);
        const hasRules = name !== undefined && (profile.syscalls.get(name)?.rules.length ?? 0) > 0;
        for (const args of argVectors(g, hasRules ? 6 : 1)) {
          const got = runFilter(program, { nr, arch: AUDIT_ARCH[arch], args });
          if (got !== expectedResolved(profile, arch, nr, args)) {
            expect.fail(`iteration ${iter}, ${arch}, nr ${nr} (${name ?? "?"}), args ${args.join(",")}: got 0x${got.toString(16)}`);
          }
        }
      }
      for (const nr of EXTRA_NRS) expect(runFilter(program, { nr, arch: AUDIT_ARCH[arch] })).toBe(expectedResolved(profile, arch, nr, []));
      expect(runFilter(program, { nr: 0, arch: AUDIT_ARCH[arch === "x86_64" ? "aarch64" : "x86_64"] })).toBe(KILL_PROCESS);
    }
    // Dense random rule sets make some trees deeper than an 8-bit jump: the
    // property must have covered the long-jump path too.
    expect(sawLongJump).toBe(true);
  });
});

describe("random compileProfile options", () => {
  it("match the documented precedence for every syscall 0..500 (200 option sets)", () => {
    const g = new Gen(prng(0xb0b));
    const allowable = knownSyscalls().filter((n) => !(n in ALWAYS_BLOCKED) && !(n in ALWAYS_ENOSYS));
    const levels: SeccompLevel[] = ["strict", "default", "permissive"];
    for (let iter = 0; iter < 200; iter++) {
      const arch = g.pick(ARCHES);
      const opts: Opts = {
        level: g.pick(levels),
        mode: g.next() < 0.5 ? "enforce" : "log",
        blockedAction: g.next() < 0.5 ? "errno" : "kill",
        extraAllow: g.subset(allowable, g.next() * 0.3),
        extraBlock: g.subset(knownSyscalls(), g.next() * 0.1),
      };
      const program = decodeProgram(compileProfile({ ...opts, arch }));
      checkShape(program);
      for (let nr = 0; nr <= 500; nr++) {
        const name = NAMES_BY_NR[arch].get(nr);
        const filtered = name !== undefined && name in FLOOR_ARG_RULES;
        for (const args of argVectors(g, filtered ? 8 : 1)) {
          const got = runFilter(program, { nr, arch: AUDIT_ARCH[arch], args });
          if (got !== expectedOpts(opts, arch, nr, args)) {
            expect.fail(`iteration ${iter} ${JSON.stringify({ ...opts, extraAllow: opts.extraAllow.length })}, ${arch}, nr ${nr} (${name ?? "?"}), args ${args.join(",")}: got 0x${got.toString(16)}`);
          }
        }
      }
    }
  });
});
