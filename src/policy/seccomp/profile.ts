// The three levels, and the hard floor that every level and mode keeps.
import { CATEGORY_NAMES } from "./categories.js";
import type { CategoryName } from "./categories.js";
import {
  AF_INET,
  AF_INET6,
  AF_PACKET,
  CLONE_NAMESPACE_FLAGS,
  PERSONALITY_QUERY,
  PER_LINUX,
  PER_LINUX32,
  SOCK_PACKET,
  SOCK_RAW,
  SOCK_TYPE_MASK,
  TIOCLINUX,
  TIOCSTI,
  UNAME26,
  argAnyBits,
  argEq,
  argMaskedEq,
} from "./rules.js";
import type { ArgRule } from "./rules.js";

export type SeccompLevel = "strict" | "default" | "permissive";
/** enforce: unlisted syscalls fail. log: unlisted syscalls run and are logged by the kernel (for building profiles). */
export type SeccompMode = "enforce" | "log";

export const SECCOMP_LEVELS: readonly SeccompLevel[] = ["strict", "default", "permissive"];
export const SECCOMP_MODES: readonly SeccompMode[] = ["enforce", "log"];

const STRICT: readonly CategoryName[] = [
  "fileIo", "fileMetadata", "directories", "memory", "processThreads", "signals", "time", "polling", "localIpc",
  "identity", "systemInfo", "fileTransfer",
];
const DEFAULT: readonly CategoryName[] = [
  ...STRICT, "fileAdvanced", "fileWatch", "networkSockets", "memoryLocking", "schedulingControl",
  "selfRestriction",
];

/** Which categories each level allows. */
export const LEVELS: Readonly<Record<SeccompLevel, { readonly description: string; readonly categories: readonly CategoryName[] }>> = {
  strict: {
    description: "Enough for /bin/sh, coreutils, python3 and node running a script: files, memory, processes, threads, signals, timers, event loops, pipes and Unix sockets.",
    categories: STRICT,
  },
  default: {
    description: "strict plus what git, npm and pip need: flock, fallocate, inotify, memory locking, scheduling changes, seccomp/Landlock for their own children, and sockets of every family but packet/raw.",
    categories: DEFAULT,
  },
  permissive: {
    description: "Every syscall the tables know except the hard floor.",
    categories: CATEGORY_NAMES,
  },
};

/**
 * The hard floor: blocked at every level and in both modes, with the reason.
 * These are the calls container runtimes (Docker's default profile, Firecracker)
 * refuse: they reach kernel subsystems that are not namespaced, change the host,
 * or have a long history of privilege-escalation bugs.
 */
export const ALWAYS_BLOCKED: Readonly<Record<string, string>> = {
  ptrace: "Reads and rewrites other processes' memory and registers; also a classic way around seccomp itself on old kernels.",
  process_vm_readv: "Reads another process's memory directly.",
  process_vm_writev: "Writes another process's memory directly.",
  kcmp: "Compares kernel objects of two processes, leaking kernel pointer ordering.",
  pidfd_getfd: "Steals a file descriptor from another process.",
  mount: "Changes the mount table; the sandbox's filesystem view must stay as bubblewrap built it.",
  umount2: "Removes mounts, which could uncover what bubblewrap hid beneath them.",
  pivot_root: "Swaps the root filesystem.",
  chroot: "Changes the root directory; a building block of escapes from a mount namespace.",
  fsopen: "New mount API: creates a filesystem context.",
  fsconfig: "New mount API: configures a filesystem context.",
  fsmount: "New mount API: turns a context into a mount.",
  fspick: "New mount API: reconfigures an existing mount.",
  move_mount: "New mount API: attaches a mount anywhere.",
  open_tree: "New mount API: clones a mount tree.",
  open_tree_attr: "New mount API: clones a mount tree with new attributes.",
  mount_setattr: "New mount API: changes mount flags such as read-only.",
  setns: "Joins another namespace.",
  unshare: "Creates namespaces; new user namespaces expose a large, bug-prone kernel surface.",
  kexec_load: "Loads a new kernel.",
  kexec_file_load: "Loads a new kernel.",
  init_module: "Loads kernel code.",
  finit_module: "Loads kernel code.",
  delete_module: "Unloads kernel code.",
  create_module: "Obsolete module loader.",
  get_kernel_syms: "Obsolete; lists kernel symbols.",
  query_module: "Obsolete; queries kernel modules.",
  bpf: "eBPF programs and maps: a large attack surface with many past privilege escalations.",
  perf_event_open: "Performance counters: leak kernel addresses and have had many privilege escalations.",
  userfaultfd: "Lets user space stall kernel page faults, the standard tool for winning kernel race bugs.",
  keyctl: "The kernel keyring is not namespaced; it can reach keys outside the sandbox.",
  add_key: "The kernel keyring is not namespaced.",
  request_key: "The kernel keyring is not namespaced.",
  open_by_handle_at: "Opens files by handle, bypassing path-based confinement (the 'shocker' container escape).",
  name_to_handle_at: "Companion of open_by_handle_at; leaks file handles.",
  reboot: "Reboots the machine or, in a pid namespace, kills its init.",
  swapon: "Changes host swap.",
  swapoff: "Changes host swap.",
  iopl: "Raw I/O port access.",
  ioperm: "Raw I/O port access.",
  acct: "Switches process accounting on the host.",
  settimeofday: "Sets the host clock, which is not namespaced.",
  clock_settime: "Sets the host clock, which is not namespaced.",
  clock_adjtime: "Adjusts the host clock.",
  adjtimex: "Adjusts the host clock.",
  quotactl: "Manipulates filesystem quotas of the host.",
  quotactl_fd: "Manipulates filesystem quotas of the host.",
  lookup_dcookie: "Profiling helper that leaks kernel paths.",
  move_pages: "Moves pages of other processes between NUMA nodes.",
  migrate_pages: "Moves pages of other processes between NUMA nodes.",
  nfsservctl: "Removed NFS server control interface.",
  vhangup: "Hangs up the controlling terminal of other sessions.",
  uselib: "Obsolete library loader with a history of bugs.",
  _sysctl: "Removed binary sysctl interface.",
  syslog: "Reads and clears the kernel log, which leaks kernel addresses.",
};

/**
 * Also part of the floor: these fail at every level, but with ENOSYS ("this
 * kernel does not have it") instead of the blocked action, because ordinary
 * runtimes probe them at startup and fall back only on ENOSYS or must not be
 * killed for asking (blockedAction "kill" would otherwise kill every node).
 */
export const ALWAYS_ENOSYS: Readonly<Record<string, string>> = {
  clone3: "Its flags are in user memory that BPF cannot inspect, so it could create namespaces; ENOSYS makes glibc fall back to clone(2), which we can inspect (Docker does the same).",
  io_uring_setup: "io_uring operations bypass seccomp entirely and io_uring has had many kernel bugs; libuv (node) probes it at startup and falls back to threads on ENOSYS.",
  io_uring_enter: "io_uring: see io_uring_setup.",
  io_uring_register: "io_uring: see io_uring_setup.",
};

/**
 * Argument rules of the floor, checked before any level rule. A rule saying
 * "allow" lets the call through at every level; "block" refuses it at every level.
 */
export const FLOOR_ARG_RULES: Readonly<Record<string, { readonly reason: string; readonly rules: readonly ArgRule[] }>> = {
  clone: {
    reason: "clone with a CLONE_NEW* flag creates namespaces, the same surface as unshare.",
    rules: [{ when: [argAnyBits(0, CLONE_NAMESPACE_FLAGS)], then: "block" }],
  },
  socket: {
    reason: "Packet sockets and raw IP sockets forge traffic and sniff the namespace's interfaces; AF_INET + SOCK_PACKET is the old spelling of a packet socket.",
    rules: [
      { when: [argEq(0, AF_PACKET)], then: "block" },
      { when: [argEq(0, AF_INET), argMaskedEq(1, SOCK_TYPE_MASK, SOCK_RAW)], then: "block" },
      { when: [argEq(0, AF_INET6), argMaskedEq(1, SOCK_TYPE_MASK, SOCK_RAW)], then: "block" },
      { when: [argEq(0, AF_INET), argMaskedEq(1, SOCK_TYPE_MASK, SOCK_PACKET)], then: "block" },
    ],
  },
  ioctl: {
    reason: "TIOCSTI pushes keystrokes into the terminal's input (run commands in the user's shell); TIOCLINUX can do the same on a virtual console.",
    rules: [
      { when: [argEq(1, TIOCSTI)], then: "block" },
      { when: [argEq(1, TIOCLINUX)], then: "block" },
    ],
  },
  personality: {
    reason: "Only the personas Docker allows: Linux, 32-bit Linux, UNAME26 and the query value. Others (e.g. ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC) weaken exploit mitigations.",
    rules: [
      { when: [argEq(0, PER_LINUX)], then: "allow" },
      { when: [argEq(0, PER_LINUX32)], then: "allow" },
      { when: [argEq(0, UNAME26)], then: "allow" },
      { when: [argEq(0, UNAME26 | PER_LINUX32)], then: "allow" },
      { when: [argEq(0, PERSONALITY_QUERY)], then: "allow" },
      { when: [], then: "block" },
    ],
  },
};
