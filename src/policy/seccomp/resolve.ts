// Turns a level plus caller tweaks into one policy per syscall.
//
// Precedence, strongest first:
//   1. the hard floor: ALWAYS_BLOCKED → block, ALWAYS_ENOSYS → ENOSYS
//   2. extraBlock → block (a caller may always refuse more)
//   3. floor argument rules (clone namespaces, packet/raw sockets, TIOCSTI, personality)
//   4. argument rules of the level's categories (strict: socket only for AF_UNIX)
//   5. the level's categories plus extraAllow → allow
//   6. everything else → "default" (EPERM or kill in enforce mode, LOG in log mode)
import { isKnownSyscall, knownSyscalls } from "./arch.js";
import { CATEGORIES } from "./categories.js";
import type { Category } from "./categories.js";
import { SeccompError } from "./errors.js";
import { ALWAYS_BLOCKED, ALWAYS_ENOSYS, FLOOR_ARG_RULES, LEVELS, SECCOMP_LEVELS, SECCOMP_MODES } from "./profile.js";
import type { SeccompLevel, SeccompMode } from "./profile.js";
import type { BlockedAction, ResolvedProfile, SyscallPolicy } from "./rules.js";

export interface ProfileOptions {
  level: SeccompLevel;
  mode: SeccompMode;
  /** How blocked (and, in enforce mode, unlisted) syscalls fail. Default "errno" (EPERM). */
  blockedAction?: BlockedAction;
  /** Syscalls to allow on top of the level. Floor syscalls cannot be allowed. */
  extraAllow?: readonly string[];
  /** Syscalls to block on top of the level; wins over the level and extraAllow. */
  extraBlock?: readonly string[];
}

/** Resolves a level and caller tweaks into a per-syscall policy; validates every name. */
export function resolveProfile(opts: ProfileOptions): ResolvedProfile {
  const blockedAction = opts.blockedAction ?? "errno";
  checkOptions(opts.level, opts.mode, blockedAction);
  const extraAllow = opts.extraAllow ?? [];
  const extraBlock = opts.extraBlock ?? [];
  checkNames("extraAllow", extraAllow);
  checkNames("extraBlock", extraBlock);
  for (const name of extraAllow) {
    const reason = Object.hasOwn(ALWAYS_BLOCKED, name) ? ALWAYS_BLOCKED[name] : Object.hasOwn(ALWAYS_ENOSYS, name) ? ALWAYS_ENOSYS[name] : undefined;
    if (reason !== undefined) {
      throw new SeccompError(
        "E_SECCOMP_ALWAYS_BLOCKED",
        `"${name}" cannot be allowed: it is part of the hard floor every level keeps (${reason}). Remove it from extraAllow; if a tool truly needs it, run that tool outside the sandbox.`,
        { details: { syscall: name } },
      );
    }
  }

  const policies = new Map<string, SyscallPolicy>();
  const categories: Category[] = LEVELS[opts.level].categories.map((name) => CATEGORIES[name]);
  for (const category of categories) {
    for (const name of category.syscalls) policies.set(name, { rules: [], otherwise: "allow" });
  }
  for (const name of extraAllow) policies.set(name, { rules: [], otherwise: "allow" });
  for (const category of categories) {
    for (const [name, rules] of Object.entries(category.argRules ?? {})) {
      const prev = policies.get(name);
      policies.set(name, { rules: [...(prev?.rules ?? []), ...rules], otherwise: prev?.otherwise ?? "default" });
    }
  }
  for (const [name, floor] of Object.entries(FLOOR_ARG_RULES)) {
    const prev = policies.get(name);
    policies.set(name, { rules: [...floor.rules, ...(prev?.rules ?? [])], otherwise: prev?.otherwise ?? "default" });
  }
  for (const name of extraBlock) policies.set(name, { rules: [], otherwise: "block" });
  for (const name of Object.keys(ALWAYS_ENOSYS)) policies.set(name, { rules: [], otherwise: "enosys" });
  for (const name of Object.keys(ALWAYS_BLOCKED)) policies.set(name, { rules: [], otherwise: "block" });

  return { mode: opts.mode, blockedAction, syscalls: policies };
}

function checkOptions(level: unknown, mode: unknown, blockedAction: unknown): void {
  if (!SECCOMP_LEVELS.includes(level as SeccompLevel)) {
    throw new SeccompError("E_SECCOMP_OPTIONS", `Unknown seccomp level "${String(level)}"; use one of ${SECCOMP_LEVELS.join(", ")}.`);
  }
  if (!SECCOMP_MODES.includes(mode as SeccompMode)) {
    throw new SeccompError("E_SECCOMP_OPTIONS", `Unknown seccomp mode "${String(mode)}"; use "enforce" or "log".`);
  }
  if (blockedAction !== "errno" && blockedAction !== "kill") {
    throw new SeccompError("E_SECCOMP_OPTIONS", `Unknown blockedAction "${String(blockedAction)}"; use "errno" or "kill".`);
  }
}

function checkNames(field: string, names: readonly string[]): void {
  const unknown = names.filter((name) => !isKnownSyscall(name));
  if (unknown.length === 0) return;
  const hints = unknown.map((name) => {
    const near = closest(name);
    return near === undefined ? `"${name}"` : `"${name}" (did you mean "${near}"?)`;
  });
  throw new SeccompError(
    "E_SECCOMP_UNKNOWN_SYSCALL",
    `${field} names syscalls that neither the x86_64 nor the aarch64 table knows: ${hints.join(", ")}. Use the kernel's name (e.g. "newfstatat", not "fstatat").`,
    { details: { field, unknown } },
  );
}

/** The known syscall name nearest by edit distance, when it is close enough to be a typo. */
function closest(name: string): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of knownSyscalls()) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
