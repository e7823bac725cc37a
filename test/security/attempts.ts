/**
 * The escape attempts as data: what each tries, how, and what counts as blocked.
 * Two readers: the vitest escape suite (every check is an assertion) and
 * bench/security.ts (every check is a row in docs/SECURITY.md). No vitest import
 * here, so the generator can run it outside a test runner.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import type { Sandbox } from "../../src/sandbox/types.js";
import { collect } from "../../src/sandbox/collect.js";

/**
 * Receives the outcome of every check. `blocked` is the attempt's verdict (false =
 * the sandbox let it through); `sane` is a precondition that makes the attempt
 * meaningful (false = the attempt proved nothing, e.g. the shell did not run).
 */
export interface Judge {
  blocked(ok: boolean, what: string): void;
  sane(ok: boolean, what: string): void;
}

/** What the host offers as bait while the attempts run. */
export interface EscapeBait {
  /** A TCP server on the host's 127.0.0.1 that answers "host-secret". */
  port: number;
  /** A host process (`sleep 300`) the sandbox tries to kill. */
  sleeperPid: number;
  /** Whether the host sleeper still runs (not exited, not a zombie). */
  sleeperAlive(): boolean;
  close(): Promise<void>;
}

export interface EscapeAttempt {
  id: string;
  title: string;
  /** What an escaping program would gain. */
  tries: string;
  /** The command(s) run inside the sandbox, for the report. */
  how: string;
  /** What counts as blocked. */
  blockedWhen: string;
  run(sb: Sandbox, bait: EscapeBait, judge: Judge): Promise<void>;
}

/** Run a shell snippet; returns exit code and output. */
async function sh(sb: Sandbox, script: string): Promise<{ code: number | null; out: string }> {
  const r = await collect(sb.exec(["sh", "-c", script], { timeoutMs: 20_000 }));
  return { code: r.result.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

/** Run python3 code that prints a result line; raw syscalls go through ctypes. */
async function py(sb: Sandbox, code: string): Promise<string> {
  const r = await collect(sb.exec(["python3", "-c", code], { timeoutMs: 20_000 }));
  return (r.stdout.toString() + r.stderr.toString()).trim();
}

const SYSCALL = "import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); libc.syscall.restype = ctypes.c_long";
/** x86_64 numbers; the checks want errno != 0 and result -1. */
const NR = process.arch === "arm64"
  ? { ptrace: 117, mount: 40, unshare: 97, init_module: 105, finit_module: 273, bpf: 280, kexec_load: 104, setns: 268, perf_event_open: 241 }
  : { ptrace: 101, mount: 165, unshare: 272, init_module: 175, finit_module: 313, bpf: 321, kexec_load: 246, setns: 308, perf_event_open: 298 };

/** Start the host-side bait: a loopback server with a secret and a process to kill. */
export async function startBait(): Promise<EscapeBait> {
  const server: Server = createServer((c) => c.end("host-secret\n"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const sleeper: ChildProcess = spawn("sleep", ["300"], { stdio: "ignore" });
  const pid = sleeper.pid!;
  return {
    port: (server.address() as { port: number }).port,
    sleeperPid: pid,
    sleeperAlive: () => {
      if (sleeper.exitCode !== null || sleeper.signalCode !== null) return false;
      // A killed child stays a zombie until node reaps it; kill(pid, 0) would still succeed.
      try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
      } catch {
        return false;
      }
    },
    close: async () => {
      sleeper.kill("SIGKILL");
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** One raw-syscall attempt through ctypes: blocked when it returns -1 with an errno. */
function syscallAttempt(name: string, args: string, tries: string, extra?: (sb: Sandbox, judge: Judge) => Promise<void>): EscapeAttempt {
  const id = `syscall-${name.replace(/\W+/g, "-").replace(/-$/, "").toLowerCase()}`;
  return {
    id,
    title: `call ${name}`,
    tries,
    how: `python3 ctypes: syscall(${args.replace(/^\d+/, `SYS_${name.replace(/\(.*/, "")}`)})${extra ? "; then `mount -t tmpfs none /tmp`" : ""}`,
    blockedWhen: `returns -1 with a non-zero errno${extra ? "; the mount command fails" : ""}`,
    async run(sb, _bait, judge) {
      const out = await py(sb, `${SYSCALL}; r = libc.syscall(${args}); print(r, ctypes.get_errno())`);
      const [ret, errno] = out.split(" ").map(Number);
      judge.blocked(ret === -1, `${name} returned ${ret}: ${out}`);
      judge.blocked(errno! > 0, `${name} errno ${errno}: ${out}`);
      await extra?.(sb, judge);
    },
  };
}

/** Every attempt, in report order; each must be blocked on every backend. */
export const ESCAPE_ATTEMPTS: EscapeAttempt[] = [
  {
    id: "read-shadow",
    title: "read the host's password hashes",
    tries: "credentials of host users",
    how: "cat /etc/shadow (after checking `find / -maxdepth 0` works)",
    blockedWhen: "cat exits non-zero",
    async run(sb, _bait, judge) {
      // find, not ls: some sandboxes (old gVisor) refuse the statx flags ls uses, and a
      // check that fails for that reason would pass without testing anything.
      judge.sane((await sh(sb, "find / -maxdepth 0")).code === 0, "find / -maxdepth 0 must work");
      const r = await sh(sb, "cat /etc/shadow");
      judge.blocked(r.code !== 0, `cat /etc/shadow exited ${r.code}`);
    },
  },
  {
    id: "list-host-dirs",
    title: "list host home, runtime and project folders",
    tries: "host files: keys, sockets (docker, systemd), the project the agent works on",
    how: "find DIR -maxdepth 1 for /root, /home, /run, /var/run and the host's working directory",
    blockedWhen: "every find exits non-zero (the folder does not exist inside)",
    async run(sb, _bait, judge) {
      for (const dir of ["/root", "/home", "/run", "/var/run", process.cwd()]) {
        const r = await sh(sb, `find ${dir} -maxdepth 1`);
        judge.blocked(r.code !== 0, `find ${dir} exited ${r.code}`);
      }
    },
  },
  {
    id: "write-outside",
    title: "write outside the workspace and /tmp",
    tries: "persist or tamper with system files, the host name",
    how: "echo x > /usr/…, /etc/…, /…, /bin/…, /proc/sys/kernel/hostname",
    blockedWhen: "every write fails",
    async run(sb, _bait, judge) {
      for (const target of ["/usr/lg-escape", "/etc/lg-escape", "/lg-escape", "/bin/lg-escape", "/proc/sys/kernel/hostname"]) {
        const r = await sh(sb, `echo x > ${target}`);
        judge.blocked(r.code !== 0, `write to ${target} exited ${r.code}`);
      }
    },
  },
  {
    id: "see-host-procs",
    title: "see host processes",
    tries: "learn what the host runs (argv, environment of other processes)",
    how: "find /proc -maxdepth 1 -name '[0-9]*' | wc -l",
    blockedWhen: "at most 5 processes are visible (the sandbox's own)",
    async run(sb, _bait, judge) {
      const procs = await sh(sb, "find /proc -maxdepth 1 -name '[0-9]*' | wc -l");
      const n = Number(procs.out.trim());
      judge.blocked(n <= 5, `${procs.out.trim()} processes visible`);
    },
  },
  {
    id: "kill-host-proc",
    title: "signal a host process",
    tries: "kill host services",
    how: "kill -9 <pid of a host `sleep 300`>",
    blockedWhen: "the host process still runs afterwards",
    async run(sb, bait, judge) {
      await sh(sb, `kill -9 ${bait.sleeperPid}`);
      judge.blocked(bait.sleeperAlive(), `host process ${bait.sleeperPid} died`);
    },
  },
  syscallAttempt("ptrace", `${NR.ptrace}, 0, 0, 0, 0`, "read or steer another process's memory"),
  syscallAttempt("mount", `${NR.mount}, b"none", b"/tmp", b"tmpfs", 0, 0`, "change the file system view, hide or expose files", async (sb, judge) => {
    const r = await sh(sb, "mount -t tmpfs none /tmp");
    judge.blocked(r.code !== 0, `mount -t tmpfs exited ${r.code}`);
  }),
  syscallAttempt("init_module", `${NR.init_module}, 0, 0, b""`, "load kernel code"),
  syscallAttempt("finit_module", `${NR.finit_module}, 0, b"", 0`, "load kernel code from a file"),
  syscallAttempt("bpf", `${NR.bpf}, 0, 0, 0`, "eBPF: a large kernel attack surface"),
  syscallAttempt("kexec_load", `${NR.kexec_load}, 0, 0, 0, 0`, "replace the running kernel"),
  syscallAttempt("setns", `${NR.setns}, 0, 0`, "join another namespace"),
  syscallAttempt("perf_event_open", `${NR.perf_event_open}, 0, 0, -1, -1, 0`, "perf events: kernel attack surface and side channels"),
  syscallAttempt("unshare(CLONE_NEWUSER)", `${NR.unshare}, 0x10000000`, "a new user namespace: root-like capabilities over new kernel surface"),
  {
    id: "raw-sockets",
    title: "open raw or packet sockets",
    tries: "forge packets, sniff, bypass the egress proxy",
    how: "python3: socket(AF_INET, SOCK_RAW) and socket(AF_PACKET, SOCK_RAW)",
    blockedWhen: "both are denied with an OSError",
    async run(sb, _bait, judge) {
      const out = await py(sb, "import socket\nfor fam, typ in [(socket.AF_INET, socket.SOCK_RAW), (socket.AF_PACKET, socket.SOCK_RAW)]:\n  try:\n    socket.socket(fam, typ, 1); print('opened')\n  except OSError as e: print('denied', e.errno)");
      judge.blocked(!out.includes("opened"), `a raw socket opened: ${out}`);
      judge.blocked(out.match(/denied/g)?.length === 2, `expected two denials: ${out}`);
    },
  },
  {
    id: "host-loopback",
    title: "reach a server on the host's loopback",
    tries: "local services that trust 127.0.0.1 (databases, admin APIs, the daemon)",
    how: "python3: connect to 127.0.0.1:<port of a host server that answers a secret>",
    blockedWhen: "the connection fails",
    async run(sb, bait, judge) {
      const out = await py(sb, `import socket\ntry:\n  s = socket.create_connection(("127.0.0.1", ${bait.port}), 2); print("reached", s.recv(100))\nexcept OSError as e: print("blocked", e.errno)`);
      judge.blocked(/^blocked/.test(out), out);
    },
  },
  {
    id: "nested-userns",
    title: "create a user namespace with the unshare tool",
    tries: "capabilities inside a nested namespace",
    how: "unshare -U true; unshare -r -n true",
    blockedWhen: "both exit non-zero",
    async run(sb, _bait, judge) {
      for (const cmd of ["unshare -U true", "unshare -r -n true"]) {
        const r = await sh(sb, cmd);
        judge.blocked(r.code !== 0, `${cmd} exited ${r.code}`);
      }
    },
  },
  {
    id: "capabilities",
    title: "hold capabilities",
    tries: "any privileged operation",
    how: "grep CapEff/CapPrm /proc/self/status",
    blockedWhen: "effective and permitted sets are empty",
    async run(sb, _bait, judge) {
      const r = await sh(sb, "grep -E '^(CapEff|CapPrm|CapBnd|Seccomp):' /proc/self/status");
      judge.blocked(/CapEff:\s+0000000000000000/.test(r.out), `CapEff: ${r.out}`);
      judge.blocked(/CapPrm:\s+0000000000000000/.test(r.out), `CapPrm: ${r.out}`);
    },
  },
  {
    id: "no-seccomp-or-nnp",
    title: "run without seccomp or regain privileges through setuid",
    tries: "syscalls outside the allow-list; setuid binaries",
    how: "grep Seccomp /proc/self/status; prctl(PR_GET_NO_NEW_PRIVS)",
    blockedWhen: "Seccomp: 2 (filter) and no_new_privs = 1",
    async run(sb, _bait, judge) {
      const r = await sh(sb, "grep -E '^Seccomp:' /proc/self/status");
      judge.blocked(/Seccomp:\s+2/.test(r.out), `Seccomp: ${r.out}`);
      // prctl rather than the NoNewPrivs status line, which gVisor does not print.
      const nnp = await py(sb, `${SYSCALL}; print(libc.prctl(39, 0, 0, 0, 0))`);
      judge.blocked(nnp === "1", `no_new_privs: ${nnp}`);
    },
  },
];
