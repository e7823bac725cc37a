// The rule model shared by the profile data and the compiler: what a profile
// decides for one syscall, and the argument tests classic BPF can express.

/** What happens to a syscall. "default" is the level's answer for unlisted calls (mode-dependent). */
export type Outcome = "allow" | "block" | "enosys" | "default";

/** How blocked syscalls fail: EPERM (the caller sees an error) or SIGSYS kill of the whole process. */
export type BlockedAction = "errno" | "kill";

/**
 * A test on the low 32 bits of one argument.
 *
 * Only the low word is ever compared: every argument we filter (clone flags,
 * socket domain/type, ioctl request, personality) is an `int` or is truncated
 * to 32 bits by the kernel, so the high word is ignored by the syscall. A
 * 64-bit equality test would be *weaker*: a caller could set junk high bits to
 * dodge `== TIOCSTI` while the kernel still runs TIOCSTI.
 */
export type ArgCondition =
  | { readonly arg: number; readonly op: "eq"; readonly value: number }
  | { readonly arg: number; readonly op: "maskedEq"; readonly mask: number; readonly value: number }
  | { readonly arg: number; readonly op: "anyBits"; readonly mask: number };

/** When every condition holds (an empty list always holds), the syscall gets `then`. */
export interface ArgRule {
  readonly when: readonly ArgCondition[];
  readonly then: "allow" | "block";
}

/** The decision for one syscall: the first matching rule wins, else `otherwise`. */
export interface SyscallPolicy {
  readonly rules: readonly ArgRule[];
  readonly otherwise: Outcome;
}

/** A profile reduced to one policy per syscall name; what `compile` turns into BPF. */
export interface ResolvedProfile {
  readonly mode: "enforce" | "log";
  readonly blockedAction: BlockedAction;
  /** Names absent from the map get the "default" outcome. */
  readonly syscalls: ReadonlyMap<string, SyscallPolicy>;
}

// Argument values used by the built-in rules (from the kernel UAPI headers).
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;
/** CLONE_NEWTIME (0x80) shares its bit with CSIGNAL in clone(2), so only unshare/clone3 can ask for it; both are refused outright. */
export const CLONE_NAMESPACE_FLAGS =
  (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET) >>> 0;

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_PACKET = 17;
/** socket(2) keeps the type in the low 4 bits; SOCK_NONBLOCK/SOCK_CLOEXEC live above. */
export const SOCK_TYPE_MASK = 0xf;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_PACKET = 10;

export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;

export const PER_LINUX = 0x0000;
export const PER_LINUX32 = 0x0008;
export const UNAME26 = 0x0020000;
/** personality(0xffffffff) only queries the current persona. */
export const PERSONALITY_QUERY = 0xffffffff;

/** Shorthand for an argument equality test. */
export function argEq(arg: number, value: number): ArgCondition {
  return { arg, op: "eq", value: value >>> 0 };
}

/** Shorthand for `(arg & mask) == value`. */
export function argMaskedEq(arg: number, mask: number, value: number): ArgCondition {
  return { arg, op: "maskedEq", mask: mask >>> 0, value: value >>> 0 };
}

/** Shorthand for `(arg & mask) != 0`. */
export function argAnyBits(arg: number, mask: number): ArgCondition {
  return { arg, op: "anyBits", mask: mask >>> 0 };
}
