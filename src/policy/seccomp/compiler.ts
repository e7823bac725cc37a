// Compiles a resolved profile into a classic-BPF seccomp program.
//
// Layout:
//   1. arch check: seccomp_data.arch must be this arch's AUDIT_ARCH, else
//      KILL_PROCESS (a 32-bit int 0x80 call on x86_64 arrives with another
//      arch and other syscall numbers; the numbers below would not mean it)
//   2. x86_64 only: nr >= 0x40000000 is the x32 ABI, same entry points under
//      other numbers, so it gets the blocked action
//   3. a binary search over syscall numbers. Every number range with one
//      decision is a leaf; a leaf is either one `ret` or, for argument-filtered
//      syscalls, a short block of argument tests that ends in `ret`s. The
//      profile's precedence (floor > extraBlock > argument rules > allow >
//      default) was already applied by resolveProfile, so the tree is one lookup.
//
// Why a search tree rather than a list of `jeq nr → ALLOW`: conditional jump
// offsets are 8 bits, so a few hundred compares cannot all reach one shared
// `ret`, and a linear scan costs ~150 compares per syscall where the tree costs
// ~8. Tree nodes jump over their left subtree; when it is longer than 255
// instructions the node uses `jge k, 0, 1; ja +len` (ja has a 32-bit offset).
import { AUDIT_ARCH, X32_SYSCALL_BIT, hostArch, syscallNumber, syscallTable } from "./arch.js";
import type { Arch } from "./arch.js";
import {
  BPF_ABS,
  BPF_ALU,
  BPF_AND,
  BPF_JA,
  BPF_JEQ,
  BPF_JGE,
  BPF_JMP,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_MAXINSNS,
  BPF_MAX_JUMP,
  BPF_W,
  SECCOMP_DATA_ARCH,
  SECCOMP_DATA_NR,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_LOG,
  argLowOffset,
  encodeProgram,
  jump,
  ret,
  stmt,
  validateProgram,
} from "./bpf.js";
import type { Instruction } from "./bpf.js";
import { SeccompError } from "./errors.js";
import { resolveProfile } from "./resolve.js";
import type { ProfileOptions } from "./resolve.js";
import type { ArgCondition, ArgRule, Outcome, ResolvedProfile, SyscallPolicy } from "./rules.js";

export const EPERM = 1;
export const ENOSYS = 38;

export interface CompileOptions extends ProfileOptions {
  /** Target arch; defaults to the host's. */
  arch?: Arch;
}

/** Compiles a level (plus tweaks) to the raw `struct sock_filter[]` bytes bwrap --seccomp reads. */
export function compileProfile(opts: CompileOptions): Buffer {
  const arch = opts.arch ?? hostArch();
  return encodeProgram(compile(resolveProfile(opts), arch));
}

/** The seccomp return value an outcome gets under a profile's mode and blocked action. */
export function actionFor(outcome: Outcome, profile: Pick<ResolvedProfile, "mode" | "blockedAction">): number {
  const blocked = profile.blockedAction === "kill" ? SECCOMP_RET_KILL_PROCESS : (SECCOMP_RET_ERRNO | EPERM) >>> 0;
  switch (outcome) {
    case "allow":
      return SECCOMP_RET_ALLOW;
    case "block":
      return blocked;
    case "enosys":
      return (SECCOMP_RET_ERRNO | ENOSYS) >>> 0;
    case "default":
      // Log mode exists to discover what a workload needs, so unlisted calls
      // run and are logged. It does not lower the floor: "block" stays blocked,
      // otherwise turning on logging would also switch off the protections a
      // profile can never drop, and a profile built in log mode would be
      // tested against a weaker sandbox than the one it ships with.
      return profile.mode === "log" ? SECCOMP_RET_LOG : blocked;
  }
}

/** Compiles a resolved profile for one arch into checked BPF instructions. */
export function compile(profile: ResolvedProfile, arch: Arch): Instruction[] {
  syscallTable(arch); // throws E_SECCOMP_ARCH for an unknown arch
  const program: Instruction[] = [
    stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_ARCH),
    jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH[arch], 1, 0),
    ret(SECCOMP_RET_KILL_PROCESS),
    stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR),
  ];
  if (arch === "x86_64") {
    program.push(jump(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1), ret(actionFor("block", profile)));
  }
  const leaves = buildLeaves(profile, arch);
  program.push(...emitTree(leaves, 0, leaves.length));
  if (program.length > BPF_MAXINSNS) {
    throw new SeccompError(
      "E_SECCOMP_PROGRAM_TOO_LARGE",
      `The ${arch} program has ${program.length} instructions; the kernel accepts at most ${BPF_MAXINSNS}. Use fewer argument rules or a coarser level.`,
      { details: { arch, instructions: program.length } },
    );
  }
  validateProgram(program);
  return program;
}

interface Leaf {
  /** First syscall number of the range; the range ends where the next leaf starts. */
  readonly start: number;
  readonly code: readonly Instruction[];
  readonly key: string;
}

function buildLeaves(profile: ResolvedProfile, arch: Arch): Leaf[] {
  const byNr = new Map<number, readonly Instruction[]>();
  for (const [name, policy] of profile.syscalls) {
    const nr = syscallNumber(arch, name);
    if (nr !== undefined) byNr.set(nr, emitPolicy(policy, profile));
  }
  const fallback = [ret(actionFor("default", profile))];
  const leaves: Leaf[] = [];
  const add = (start: number, code: readonly Instruction[]): void => {
    const key = JSON.stringify(code);
    // Neighbouring numbers with the same code share one leaf, which keeps the tree small.
    if (leaves.at(-1)?.key !== key) leaves.push({ start, code, key });
  };
  let next = 0;
  for (const nr of [...byNr.keys()].sort((a, b) => a - b)) {
    if (nr > next) add(next, fallback);
    add(nr, byNr.get(nr) ?? fallback);
    next = nr + 1;
  }
  if (next <= 0xffffffff) add(next, fallback);
  return leaves;
}

function emitTree(leaves: readonly Leaf[], lo: number, hi: number): Instruction[] {
  const mid = (lo + hi) >>> 1;
  const pivot = leaves[mid];
  if (hi - lo === 1 || pivot === undefined) return [...(leaves[lo]?.code ?? [])];
  const left = emitTree(leaves, lo, mid);
  const right = emitTree(leaves, mid, hi);
  if (left.length <= BPF_MAX_JUMP) return [jump(BPF_JMP | BPF_JGE | BPF_K, pivot.start, left.length, 0), ...left, ...right];
  return [jump(BPF_JMP | BPF_JGE | BPF_K, pivot.start, 0, 1), stmt(BPF_JMP | BPF_JA, left.length), ...left, ...right];
}

/** The leaf code of one syscall: argument tests in rule order, each rule ending in its own `ret`. */
function emitPolicy(policy: SyscallPolicy, profile: ResolvedProfile): Instruction[] {
  const { rules, otherwise } = normalize(policy, profile);
  const out: Instruction[] = [];
  for (const rule of rules) out.push(...emitRule(rule, actionFor(rule.then, profile)));
  out.push(ret(otherwise));
  return out;
}

/** Drops rules that cannot change the result, so equal decisions produce equal code. */
function normalize(policy: SyscallPolicy, profile: ResolvedProfile): { rules: ArgRule[]; otherwise: number } {
  const rules: ArgRule[] = [];
  let otherwise = actionFor(policy.otherwise, profile);
  for (const rule of policy.rules) {
    if (rule.when.length === 0) {
      otherwise = actionFor(rule.then, profile); // always matches: later rules are dead
      break;
    }
    rules.push(rule);
  }
  while (rules.length > 0 && actionFor(rules[rules.length - 1]?.then ?? "default", profile) === otherwise) rules.pop();
  return { rules, otherwise };
}

/** All conditions must hold to reach this rule's `ret`; any failing one skips to the next rule. */
function emitRule(rule: ArgRule, action: number): Instruction[] {
  const parts = rule.when.map(conditionParts);
  const out: Instruction[] = [];
  let remaining = parts.reduce((n, p) => n + p.length, 0) + 1; // + the ret
  for (const part of parts) {
    remaining -= part.length;
    out.push(...part.slice(0, -1));
    const test = part[part.length - 1];
    if (test === undefined) continue;
    // On failure, skip the rest of this rule: later conditions and the ret.
    out.push(jump(test.code, test.k, 0, remaining));
  }
  out.push(ret(action));
  return out;
}

/** Load, optional mask, and a test (whose jf the caller fills in). */
function conditionParts(cond: ArgCondition): Instruction[] {
  if (!Number.isInteger(cond.arg) || cond.arg < 0 || cond.arg > 5) {
    throw new SeccompError("E_SECCOMP_INVALID_PROGRAM", `Argument index ${cond.arg} does not exist; syscalls have arguments 0..5.`);
  }
  const load = stmt(BPF_LD | BPF_W | BPF_ABS, argLowOffset(cond.arg));
  switch (cond.op) {
    case "eq":
      return [load, stmt(BPF_JMP | BPF_JEQ | BPF_K, cond.value)];
    case "maskedEq":
      return [load, stmt(BPF_ALU | BPF_AND | BPF_K, cond.mask), stmt(BPF_JMP | BPF_JEQ | BPF_K, cond.value)];
    case "anyBits":
      return [load, stmt(BPF_JMP | BPF_JSET | BPF_K, cond.mask)];
  }
}
