// Syscalls grouped by what they let a program do. Levels (profile.ts) are
// lists of these categories, so a reviewer can judge a level by reading
// rationales instead of 300 names.
//
// Every syscall in the arch tables belongs to exactly one category or to the
// hard floor in profile.ts (a unit test checks this), so a new table entry has
// to be classified before it can be allowed anywhere. Names missing from an
// arch's table (open, fork, arch_prctl on aarch64) are skipped for that arch.
import { AF_UNIX, argEq } from "./rules.js";
import type { ArgRule } from "./rules.js";

export interface Category {
  readonly rationale: string;
  readonly syscalls: readonly string[];
  /** Syscalls this category allows only for some arguments (checked after the floor rules). */
  readonly argRules?: Readonly<Record<string, readonly ArgRule[]>>;
}

export const CATEGORIES = {
  // ---- strict: enough for sh, coreutils, python3 and node running a script ----
  fileIo: {
    rationale:
      "Reading and writing open files is what every program does. Which files exist is the mount namespace's business, not seccomp's. ioctl is here because libc needs TCGETS and friends; its dangerous terminal requests are refused by the floor. sync is here because the coreutils sync command calls it (with blockedAction kill, refusing it would kill the command).",
    syscalls: [
      "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2", "pwritev2",
      "lseek", "open", "openat", "openat2", "creat", "close", "close_range", "dup", "dup2", "dup3",
      "fcntl", "ioctl", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "truncate", "ftruncate", "fadvise64",
    ],
  },
  fileMetadata: {
    rationale:
      "stat, access checks, permissions, owners, timestamps and extended attributes. Writing xattrs belongs here because coreutils sets every mode through an ACL (fsetxattr of system.posix_acl_access): without it `install -m` and `cp -p` fail. Changing owners only works for ids mapped into the user namespace; trusted.* and security.* xattrs need capabilities the sandbox lacks.",
    syscalls: [
      "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat", "faccessat2",
      "readlink", "readlinkat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
      "utime", "utimes", "futimesat", "utimensat", "umask",
      "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr", "getxattrat", "listxattrat",
      "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr", "setxattrat", "removexattrat",
    ],
  },
  directories: {
    rationale:
      "Listing, creating, renaming, linking and removing directory entries, and the working directory. mknod is here for mkfifo; device nodes need CAP_MKNOD, which the sandbox lacks.",
    syscalls: [
      "getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat",
      "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat", "mknod", "mknodat",
    ],
  },
  memory: {
    rationale:
      "Mapping and protecting memory: every allocator and JIT (V8) needs these. memfd_create is an anonymous file; pkeys, mseal and shadow stacks only restrict the caller. NUMA placement (get/set_mempolicy, mbind) acts only on the caller's own memory, and libnuma users such as ps call it at startup (cross-process page moves are on the floor).",
    syscalls: [
      "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "msync", "membarrier", "memfd_create",
      "pkey_mprotect", "pkey_alloc", "pkey_free", "mseal", "map_shadow_stack",
      "get_mempolicy", "set_mempolicy", "mbind", "set_mempolicy_home_node",
    ],
  },
  processThreads: {
    rationale:
      "Starting programs and threads, waiting for them, futexes, thread setup (TLS, robust lists, rseq) and reading or lowering one's own scheduling. clone is filtered by the floor so it cannot create namespaces.",
    syscalls: [
      "clone", "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
      "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
      "set_tid_address", "set_robust_list", "rseq", "futex", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
      "arch_prctl", "prctl", "pidfd_open", "restart_syscall",
      "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_getscheduler",
      "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval", "sched_getattr",
      "getpriority", "setpriority", "getcpu",
    ],
  },
  signals: {
    rationale: "Signal handlers, masks and delivery. kill reaches only processes the sandbox's pid namespace and uid can see.",
    syscalls: [
      "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo",
      "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "signalfd", "signalfd4",
      "kill", "tkill", "tgkill", "pidfd_send_signal", "pause", "alarm",
    ],
  },
  time: {
    rationale: "Reading clocks, sleeping and timers. Setting the clock is on the floor.",
    syscalls: [
      "clock_gettime", "clock_getres", "clock_nanosleep", "gettimeofday", "time", "nanosleep", "times",
      "getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",
      "timerfd_create", "timerfd_settime", "timerfd_gettime",
    ],
  },
  polling: {
    rationale: "Waiting on many descriptors at once: event loops (libuv, asyncio) are built on epoll and eventfd.",
    syscalls: [
      "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
      "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
    ],
  },
  localIpc: {
    rationale:
      "Pipes and Unix-domain sockets, which stay on this machine (shell pipelines, subprocess stdio, node's child_process uses socketpair). The calls that act on an open socket are the same for every family, so what decides network reach is which sockets can be created: here socket() only for AF_UNIX.",
    syscalls: [
      "pipe", "pipe2", "socketpair", "connect", "bind", "listen", "accept", "accept4",
      "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
      "getsockname", "getpeername", "setsockopt", "getsockopt",
    ],
    argRules: { socket: [{ when: [argEq(0, AF_UNIX)], then: "allow" }] },
  },
  identity: {
    rationale: "Reading one's own user, group and capability sets (node checks capget before trusting NODE_OPTIONS).",
    syscalls: ["getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "capget"],
  },
  systemInfo: {
    rationale: "uname, memory and load figures, resource limits on oneself, and random numbers.",
    syscalls: ["uname", "sysinfo", "getrlimit", "setrlimit", "prlimit64", "getrusage", "getrandom"],
  },

  fileTransfer: {
    rationale:
      "In-kernel copies between descriptors the process already holds. node's fs.copyFile (libuv) fails outright when copy_file_range/sendfile are refused; cp and python's shutil use them too.",
    syscalls: ["sendfile", "copy_file_range", "splice", "tee", "vmsplice"],
  },

  // ---- default: adds what git, npm and pip need (network reach is the firewall's job) ----
  fileAdvanced: {
    rationale:
      "Whole-file locks (git, pip and npm caches use flock), preallocation, readahead, and inode flags (file_getattr/file_setattr, what chattr does).",
    syscalls: ["flock", "fallocate", "readahead", "file_getattr", "file_setattr"],
  },
  fileWatch: {
    rationale: "inotify watches on files the sandbox can already read (build tools, dev servers).",
    syscalls: ["inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch"],
  },
  networkSockets: {
    rationale:
      "socket() for every family except those the floor refuses (packet and raw IP sockets). The network namespace and egress firewall decide where a socket can reach; package managers need TCP to the egress proxy and netlink for getaddrinfo.",
    syscalls: ["socket"],
  },
  memoryLocking: {
    rationale: "Locking pages in RAM (bounded by RLIMIT_MEMLOCK) and mincore residency checks (used by some databases and crypto libraries).",
    syscalls: ["mlock", "mlock2", "munlock", "mlockall", "munlockall", "mincore"],
  },
  schedulingControl: {
    rationale: "Setting scheduling policy and I/O priority of one's own processes; raising them needs a capability the sandbox lacks.",
    syscalls: ["sched_setparam", "sched_setscheduler", "sched_setattr", "ioprio_get", "ioprio_set"],
  },
  selfRestriction: {
    rationale: "seccomp and Landlock only take rights away from the caller; tools that sandbox their own children need them.",
    syscalls: ["seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"],
  },

  // ---- permissive only: rarely needed, larger kernel surface ----
  asyncIo: {
    rationale: "Linux AIO (io_setup and friends), used by a few databases. io_uring is on the floor.",
    syscalls: ["io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents"],
  },
  sysvIpc: {
    rationale: "System V shared memory, semaphores and message queues; private to the sandbox's IPC namespace.",
    syscalls: ["shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semctl", "semtimedop", "msgget", "msgsnd", "msgrcv", "msgctl"],
  },
  posixMq: {
    rationale: "POSIX message queues; private to the sandbox's IPC namespace.",
    syscalls: ["mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr"],
  },
  identityChange: {
    rationale: "Changing user, group and capability sets; only ids mapped into the user namespace are reachable.",
    syscalls: ["setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid", "capset"],
  },
  hostNames: {
    rationale: "Setting the host and domain name of the sandbox's own UTS namespace.",
    syscalls: ["sethostname", "setdomainname"],
  },
  processIntrospection: {
    rationale: "Acting on another process's memory hints or robust-futex list; limited by ptrace access checks.",
    syscalls: ["get_robust_list", "process_madvise", "process_mrelease"],
  },
  fanotify: {
    rationale: "Filesystem-wide event monitoring; mostly needs CAP_SYS_ADMIN anyway.",
    syscalls: ["fanotify_init", "fanotify_mark"],
  },
  mountInfo: {
    rationale: "Reading the mount table through the new statmount/listmount calls (the same facts /proc/self/mountinfo shows).",
    syscalls: ["statmount", "listmount"],
  },
  lsm: {
    rationale: "Reading and setting one's own LSM attributes (AppArmor/SELinux labels).",
    syscalls: ["lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules"],
  },
  memorySpecial: {
    rationale: "Secret memory, page-cache statistics (a cache side channel) and the deprecated remap_file_pages.",
    syscalls: ["memfd_secret", "cachestat", "remap_file_pages"],
  },
  legacy: {
    rationale:
      "Old x86 calls (LDT, thread areas, ustat, sysfs, the pre-2.6 epoll variants) and numbers the kernel never implemented (it answers ENOSYS).",
    syscalls: [
      "modify_ldt", "set_thread_area", "get_thread_area", "ustat", "sysfs", "epoll_ctl_old", "epoll_wait_old",
      "afs_syscall", "tuxcall", "security", "putpmsg", "getpmsg", "vserver",
    ],
  },
} as const satisfies Record<string, Category>;

export type CategoryName = keyof typeof CATEGORIES;

/** All category names, in declaration order. */
export const CATEGORY_NAMES = Object.keys(CATEGORIES) as CategoryName[];
