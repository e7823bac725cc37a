// What the shipped levels do, checked by running the compiled programs in the
// BPF interpreter: the floor at every level and mode, the argument rules, and
// the category data itself.
import { describe, expect, it } from "vitest";
import { ARCHES, AUDIT_ARCH, knownSyscalls, syscallNumber, syscallTable } from "../../src/policy/seccomp/arch.js";
import type { Arch } from "../../src/policy/seccomp/arch.js";
import { SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_LOG, runFilter } from "../../src/policy/seccomp/bpf.js";
import type { Instruction } from "../../src/policy/seccomp/bpf.js";
import { CATEGORIES, CATEGORY_NAMES } from "../../src/policy/seccomp/categories.js";
import type { Category } from "../../src/policy/seccomp/categories.js";
import { compile } from "../../src/policy/seccomp/compiler.js";
import { ALWAYS_BLOCKED, ALWAYS_ENOSYS, FLOOR_ARG_RULES, LEVELS } from "../../src/policy/seccomp/profile.js";
import type { SeccompLevel, SeccompMode } from "../../src/policy/seccomp/profile.js";
import { resolveProfile } from "../../src/policy/seccomp/resolve.js";

const EPERM = 0x00050001;
const ENOSYS = 0x00050026;
const AUDIT_ARCH_I386 = 0x40000003;
const AUDIT_ARCH_ARM = 0x40000028;

const CLONE_NS = { NEWNS: 0x20000, NEWCGROUP: 0x02000000, NEWUTS: 0x04000000, NEWIPC: 0x08000000, NEWUSER: 0x10000000, NEWPID: 0x20000000, NEWNET: 0x40000000 };
const THREAD_FLAGS = 0x3d0f00n; // what glibc's pthread_create passes to clone
const FORK_FLAGS = 0x1200011n; // CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD

const LEVEL_NAMES: SeccompLevel[] = ["strict", "default", "permissive"];
const MODES: SeccompMode[] = ["enforce", "log"];
const BLOCKED_ACTIONS = ["errno", "kill"] as const;

function levelSyscalls(level: SeccompLevel): Set<string> {
  return new Set(LEVELS[level].categories.flatMap((c) => CATEGORIES[c].syscalls));
}

interface Case {
  level: SeccompLevel;
  mode: SeccompMode;
  blockedAction: "errno" | "kill";
  arch: Arch;
  program: Instruction[];
  blocked: number;
  unlisted: number;
  call(name: string, args?: bigint[]): number;
}

const CASES: Case[] = [];
for (const level of LEVEL_NAMES) {
  for (const mode of MODES) {
    for (const blockedAction of BLOCKED_ACTIONS) {
      for (const arch of ARCHES) {
        const program = compile(resolveProfile({ level, mode, blockedAction }), arch);
        const blocked = blockedAction === "kill" ? SECCOMP_RET_KILL_PROCESS : EPERM;
        CASES.push({
          level, mode, blockedAction, arch, program, blocked,
          unlisted: mode === "log" ? SECCOMP_RET_LOG : blocked,
          call(name, args = []) {
            const nr = syscallNumber(arch, name);
            if (nr === undefined) throw new Error(`${name} is not a syscall on ${arch}`);
            return runFilter(program, { nr, arch: AUDIT_ARCH[arch], args });
          },
        });
      }
    }
  }
}
const label = (c: Case) => `${c.level}/${c.mode}/${c.blockedAction}/${c.arch}`;

describe.each(CASES.map((c) => [label(c), c] as const))("%s", (_label, c) => {
  const onArch = (names: Iterable<string>) => [...names].filter((n) => syscallNumber(c.arch, n) !== undefined);

  it("blocks every ALWAYS_BLOCKED syscall with the blocked action", () => {
    for (const name of onArch(Object.keys(ALWAYS_BLOCKED))) expect(c.call(name), name).toBe(c.blocked);
  });

  it("answers ENOSYS for clone3 and io_uring", () => {
    for (const name of onArch(Object.keys(ALWAYS_ENOSYS))) expect(c.call(name), name).toBe(ENOSYS);
  });

  it("allows every syscall of the level's categories", () => {
    for (const name of onArch(levelSyscalls(c.level))) expect(c.call(name), name).toBe(SECCOMP_RET_ALLOW);
  });

  it("gives unlisted syscalls the mode's default action", () => {
    const unlisted = onArch(knownSyscalls()).filter(
      (n) => !levelSyscalls(c.level).has(n) && !(n in ALWAYS_BLOCKED) && !(n in ALWAYS_ENOSYS) && !(n in FLOOR_ARG_RULES),
    );
    if (c.level === "permissive") expect(unlisted).toEqual([]);
    for (const name of unlisted) expect(c.call(name), name).toBe(c.unlisted);
    // Numbers no table knows (newer kernels' syscalls) are unlisted at every level.
    for (const nr of [470, 471, 511, 1000, 0x3fffffff]) {
      expect(runFilter(c.program, { nr, arch: AUDIT_ARCH[c.arch] }), String(nr)).toBe(c.unlisted);
    }
  });

  it("kills foreign-arch calls, whatever the number", () => {
    const foreign = c.arch === "x86_64" ? [AUDIT_ARCH_I386, AUDIT_ARCH.aarch64] : [AUDIT_ARCH_ARM, AUDIT_ARCH.x86_64];
    for (const arch of foreign) {
      for (const nr of [0, 1, 11, 59, 101, 221]) expect(runFilter(c.program, { nr, arch })).toBe(SECCOMP_RET_KILL_PROCESS);
    }
  });

  it("blocks the x32 ABI on x86_64 (aarch64 has none: those numbers are merely unlisted)", () => {
    const expected = c.arch === "x86_64" ? c.blocked : c.unlisted;
    for (const nr of [0x40000000, 0x40000000 + 1, 0x40000000 + 59, 0x40000000 + 520, 0xffffffff]) {
      expect(runFilter(c.program, { nr, arch: AUDIT_ARCH[c.arch] }), String(nr)).toBe(expected);
    }
  });

  it("blocks clone with any namespace flag and allows thread and fork flags", () => {
    for (const [flag, bit] of Object.entries(CLONE_NS)) {
      expect(c.call("clone", [BigInt(bit)]), flag).toBe(c.blocked);
      expect(c.call("clone", [THREAD_FLAGS | BigInt(bit)]), flag).toBe(c.blocked);
    }
    expect(c.call("clone", [THREAD_FLAGS])).toBe(SECCOMP_RET_ALLOW);
    expect(c.call("clone", [FORK_FLAGS])).toBe(SECCOMP_RET_ALLOW);
    // The kernel uses only the low 32 bits of clone's flags; so does the filter.
    expect(c.call("clone", [THREAD_FLAGS | (1n << 40n)])).toBe(SECCOMP_RET_ALLOW);
    expect(c.call("clone", [BigInt(CLONE_NS.NEWUSER) | (0xffffn << 32n)])).toBe(c.blocked);
  });

  it("blocks packet and raw IP sockets", () => {
    const SOCK_NONBLOCK = 0x800n;
    const SOCK_CLOEXEC = 0x80000n;
    expect(c.call("socket", [17n, 3n, 0n])).toBe(c.blocked); // AF_PACKET, SOCK_RAW
    expect(c.call("socket", [17n, 2n, 0n])).toBe(c.blocked); // AF_PACKET, SOCK_DGRAM
    expect(c.call("socket", [2n, 3n, 1n])).toBe(c.blocked); // AF_INET, SOCK_RAW, ICMP
    expect(c.call("socket", [2n, 3n | SOCK_NONBLOCK | SOCK_CLOEXEC, 1n])).toBe(c.blocked);
    expect(c.call("socket", [10n, 3n | SOCK_CLOEXEC, 58n])).toBe(c.blocked); // AF_INET6, SOCK_RAW, ICMPv6
    expect(c.call("socket", [2n, 10n, 0n])).toBe(c.blocked); // AF_INET + SOCK_PACKET is a packet socket
    expect(c.call("socket", [(1n << 32n) | 17n, 3n, 0n])).toBe(c.blocked); // high junk does not hide AF_PACKET
  });

  it("allows Unix sockets everywhere and network sockets from the default level up", () => {
    expect(c.call("socket", [1n, 1n | 0x80000n, 0n])).toBe(SECCOMP_RET_ALLOW); // AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC
    expect(c.call("socketpair", [1n, 1n, 0n])).toBe(SECCOMP_RET_ALLOW);
    const network = c.level === "strict" ? c.unlisted : SECCOMP_RET_ALLOW;
    expect(c.call("socket", [2n, 1n, 0n])).toBe(network); // AF_INET, SOCK_STREAM
    expect(c.call("socket", [10n, 2n | 0x800n, 0n])).toBe(network); // AF_INET6, SOCK_DGRAM|SOCK_NONBLOCK
    expect(c.call("socket", [16n, 3n, 0n])).toBe(network); // AF_NETLINK, SOCK_RAW is ordinary netlink
  });

  it("blocks TIOCSTI and TIOCLINUX ioctls, even with junk in the high word", () => {
    expect(c.call("ioctl", [0n, 0x5412n, 0n])).toBe(c.blocked);
    expect(c.call("ioctl", [0n, 0x541cn, 0n])).toBe(c.blocked);
    expect(c.call("ioctl", [0n, (1n << 32n) | 0x5412n, 0n])).toBe(c.blocked);
    expect(c.call("ioctl", [1n, 0x5401n, 0n])).toBe(SECCOMP_RET_ALLOW); // TCGETS
    expect(c.call("ioctl", [1n, 0x5413n, 0n])).toBe(SECCOMP_RET_ALLOW); // TIOCGWINSZ
  });

  it("allows only the safe personalities", () => {
    for (const persona of [0n, 8n, 0x20000n, 0x20008n, 0xffffffffn]) expect(c.call("personality", [persona]), String(persona)).toBe(SECCOMP_RET_ALLOW);
    for (const persona of [0x0040000n, 0x0400000n, 0x1n]) expect(c.call("personality", [persona]), String(persona)).toBe(c.blocked);
  });
});

describe("extraAllow and extraBlock", () => {
  const run = (arch: Arch, program: Instruction[], name: string, args: bigint[] = []) =>
    runFilter(program, { nr: syscallNumber(arch, name) ?? -1, arch: AUDIT_ARCH[arch], args });

  it("extraAllow adds to the level; the floor's argument rules still apply", () => {
    const program = compile(resolveProfile({ level: "strict", mode: "enforce", extraAllow: ["flock", "socket"] }), "x86_64");
    expect(run("x86_64", program, "flock")).toBe(SECCOMP_RET_ALLOW);
    expect(run("x86_64", program, "socket", [2n, 1n])).toBe(SECCOMP_RET_ALLOW);
    expect(run("x86_64", program, "socket", [17n, 3n])).toBe(EPERM);
  });

  it("extraBlock wins over the level, extraAllow and the floor's allow rules", () => {
    const program = compile(
      resolveProfile({ level: "permissive", mode: "log", extraAllow: ["read"], extraBlock: ["read", "personality", "socket"] }),
      "aarch64",
    );
    expect(run("aarch64", program, "read")).toBe(EPERM);
    expect(run("aarch64", program, "personality", [0n])).toBe(EPERM);
    expect(run("aarch64", program, "socket", [1n, 1n])).toBe(EPERM);
    expect(run("aarch64", program, "write")).toBe(SECCOMP_RET_ALLOW);
  });
});

describe("level and category data", () => {
  const floor = new Set([...Object.keys(ALWAYS_BLOCKED), ...Object.keys(ALWAYS_ENOSYS)]);

  it("puts every table syscall in exactly one category or the floor", () => {
    const owner = new Map<string, string[]>();
    for (const name of CATEGORY_NAMES) for (const s of CATEGORIES[name].syscalls) owner.set(s, [...(owner.get(s) ?? []), name]);
    for (const s of floor) owner.set(s, [...(owner.get(s) ?? []), "floor"]);
    for (const s of Object.keys(FLOOR_ARG_RULES)) if (!owner.has(s)) owner.set(s, ["floor arg rules"]);
    expect([...owner].filter(([, owners]) => owners.length > 1)).toEqual([]);
    expect(knownSyscalls().filter((s) => !owner.has(s))).toEqual([]);
    expect([...owner.keys()].filter((s) => !knownSyscalls().includes(s))).toEqual([]);
  });

  it("has the floor the brief requires", () => {
    const required = [
      "ptrace", "mount", "umount2", "pivot_root", "chroot", "setns", "unshare", "kexec_load", "kexec_file_load",
      "init_module", "finit_module", "delete_module", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
      "userfaultfd", "process_vm_readv", "process_vm_writev", "open_by_handle_at", "name_to_handle_at", "reboot",
      "swapon", "swapoff", "iopl", "ioperm", "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
      "quotactl", "lookup_dcookie", "move_pages", "nfsservctl", "vhangup", "fsopen", "fsconfig", "fsmount", "fspick",
      "move_mount", "open_tree", "mount_setattr", "uselib", "_sysctl", "syslog", "kcmp", "pidfd_getfd",
    ];
    expect(required.filter((s) => !(s in ALWAYS_BLOCKED))).toEqual([]);
    expect(Object.keys(ALWAYS_ENOSYS).sort()).toEqual(["clone3", "io_uring_enter", "io_uring_register", "io_uring_setup"]);
    for (const [name, reason] of Object.entries({ ...ALWAYS_BLOCKED, ...ALWAYS_ENOSYS })) expect(reason.length, name).toBeGreaterThan(10);
  });

  it("nests the levels: strict ⊂ default ⊂ permissive = every category", () => {
    const [strict, dflt, permissive] = LEVEL_NAMES.map((l) => new Set(LEVELS[l].categories));
    expect([...(strict ?? [])].every((c) => dflt?.has(c))).toBe(true);
    expect([...(dflt ?? [])].every((c) => permissive?.has(c))).toBe(true);
    expect([...(permissive ?? [])].sort()).toEqual([...CATEGORY_NAMES].sort());
    expect(dflt?.size).toBeGreaterThan(strict?.size ?? 0);
  });

  it("gives every category a rationale and only syscalls of some arch table", () => {
    for (const name of CATEGORY_NAMES) {
      const category: Category = CATEGORIES[name];
      expect(category.rationale.length, name).toBeGreaterThan(20);
      expect(category.syscalls.length + Object.keys(category.argRules ?? {}).length, name).toBeGreaterThan(0);
      for (const s of category.syscalls) expect(ARCHES.some((a) => s in syscallTable(a)), s).toBe(true);
    }
  });

  it("keeps what node, python and the shell need at startup in strict", () => {
    const strict = levelSyscalls("strict");
    for (const s of ["execve", "mmap", "mprotect", "futex", "clone", "epoll_create1", "eventfd2", "getrandom", "statx", "pipe2", "rseq", "capget", "copy_file_range", "fsetxattr", "get_mempolicy"]) {
      expect(strict.has(s), s).toBe(true);
    }
  });
});
