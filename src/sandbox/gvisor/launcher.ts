/**
 * The small program that runs inside a gVisor sandbox around every command.
 *
 * Why it exists: `runsc exec` starts a process in the sandbox but gives it no
 * seccomp filter (gVisor applies the OCI filter to the container's first process
 * only), no process-tree boundary (an exec'd command's orphans move to the
 * container's init, and `setsid` escapes any process group), and it does not
 * forward signals. So each exec runs `perl launch.pl exec ...` as root inside
 * the sandbox with just the capabilities it needs, which:
 *   1. unshares a PID and a mount namespace and forks the PID namespace's init
 *      (A), which mounts a /proc that shows only this command's tree and sets
 *      PR_SET_PDEATHSIG=SIGKILL: killing the launcher (P) from the host with
 *      `runsc kill --pid P KILL` ends the namespace and everything in it;
 *   2. A forks the command (C), which drops to the sandbox uid/gid, drops the
 *      capability bounding set, sets RLIMIT_NPROC (gVisor's own process limit:
 *      host cgroup pids count the sentry's threads, not the sandbox's processes),
 *      sets no_new_privs and installs our compiled seccomp program, then execs;
 *   3. signals sent to P are forwarded to A, which sends them to every process
 *      in its namespace (the whole tree, like the namespace backend); when C
 *      exits, A exits with C's status (128+N for a signal, as bwrap reports it)
 *      and the kernel kills whatever C left behind.
 * The same file has an `init` mode: the container's first process, which only
 * reaps orphans (a plain `sleep` would collect zombies forever).
 *
 * Perl because `perl-base` is Essential on Debian/Ubuntu (always in the /usr the
 * sandbox sees), its builtin `syscall` reaches prctl/seccomp/unshare without
 * modules, and it starts in ~50 ms under gVisor (python3 takes ~300 ms). Only
 * builtins are used: loading POSIX.pm costs another ~250 ms under gVisor.
 */
import type { Arch } from "../../policy/seccomp/index.js";
import { syscallNumber } from "../../policy/seccomp/index.js";
import { SandboxError } from "../errors.js";

/** Where the launcher and the sandbox's seccomp program are mounted (read-only) inside the sandbox. */
export const CONTROL_DIR = "/.luminaguard";
export const LAUNCHER_PATH = `${CONTROL_DIR}/launch.pl`;
export const SECCOMP_PATH = `${CONTROL_DIR}/seccomp.bpf`;
/** Perl inside the sandbox: the host's /usr is the sandbox's /usr. */
export const PERL_PATH = "/usr/bin/perl";

/**
 * Capabilities `runsc exec` grants the launcher: CLONE_NEWPID needs SYS_ADMIN,
 * dropping to the sandbox user SETUID/SETGID, emptying the bounding set SETPCAP,
 * and A (root) needs KILL to pass signals on to the command's processes (another uid).
 * The command never has them: C drops all of them before it execs.
 */
export const LAUNCHER_CAPS = ["CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_KILL"] as const;
const CAP_NUMBERS = { CAP_KILL: 5, CAP_SETGID: 6, CAP_SETUID: 7, CAP_SETPCAP: 8, CAP_SYS_ADMIN: 21 } as const;

/** Signals the launcher forwards to the command's tree (SIGKILL/SIGSTOP cannot be caught; CHLD/PIPE are its own business). */
export const FORWARDED_SIGNALS = ["HUP", "INT", "QUIT", "USR1", "USR2", "ALRM", "TERM", "CONT", "TSTP", "TTIN", "TTOU", "WINCH"] as const;

const NEEDED_SYSCALLS = ["unshare", "mount", "prctl", "seccomp", "setresuid", "setresgid", "setgroups", "setrlimit", "capset"] as const;

/** The launcher's Perl source for an arch (syscall numbers differ between x86_64 and aarch64). */
export function launcherScript(arch: Arch): string {
  const nr: Record<string, number> = {};
  for (const name of NEEDED_SYSCALLS) {
    const n = syscallNumber(arch, name);
    if (n === undefined) throw new SandboxError("E_BACKEND_UNAVAILABLE", `The gVisor launcher needs syscall ${name}, which has no number on ${arch}.`);
    nr[name] = n;
  }
  const caps = Object.values(CAP_NUMBERS).join(", ");
  return `# LuminaGuard gVisor launcher (generated; see src/sandbox/gvisor/launcher.ts).
use strict;
my %NR = (${Object.entries(nr).map(([k, v]) => `${k} => ${v}`).join(", ")});
my @FWD = qw(${FORWARDED_SIGNALS.join(" ")});
my $mode = shift @ARGV // '';
sub fail { print STDERR "luminaguard: $_[0]\\n"; exit 125 }
sub status_code { my $s = shift; ($s & 127) ? 128 + ($s & 127) : $s >> 8 }

if ($mode eq 'init') {
  # The container's first process: reap orphans, sleep otherwise (SIGCHLD interrupts the sleep).
  $SIG{CHLD} = sub {};
  for (;;) { 1 while waitpid(-1, 1) > 0; sleep 60; }
}
$mode eq 'exec' or fail("unknown launcher mode '$mode'");

my ($uid, $gid, $nproc, $cwd, $bpf, $nenv) = splice(@ARGV, 0, 6);
$_ += 0 for ($uid, $gid, $nproc, $nenv);
my %env;
for (splice(@ARGV, 0, $nenv)) { my ($k, $v) = split(/=/, $_, 2); $env{$k} = $v; }
shift @ARGV if @ARGV && $ARGV[0] eq '--';
@ARGV or fail("no command given");
my $prog = '';
if ($bpf ne '-') {
  open(my $fh, '<:raw', $bpf) or fail("cannot read the seccomp program $bpf: $!");
  local $/; $prog = <$fh>; close $fh;
}

# A PID namespace for the command's tree, and a mount namespace so its /proc shows only that tree.
syscall($NR{unshare}, 0x20020000) == 0 or fail("unshare(CLONE_NEWPID|CLONE_NEWNS) failed: $!");
pipe(my $alive_r, my $alive_w) or fail("pipe: $!");
my $init = fork;
defined $init or fail("fork: $!");
if ($init) {
  # P, outside the namespace: pass signals on, report A's status.
  close $alive_r;
  for my $sig (@FWD) { $SIG{$sig} = sub { kill $sig, $init } }
  for (;;) { my $p = waitpid($init, 0); last if $p == $init; exit 125 if $p == -1 && ($! + 0) != 4; }
  exit status_code($?);
}

# A: pid 1 of the new namespace. Die with P; if P is already gone, the pipe reads EOF.
syscall($NR{prctl}, 1, 9, 0, 0, 0) == 0 or fail("PR_SET_PDEATHSIG failed: $!");
close $alive_w;
fcntl($alive_r, 4, 2048); # F_SETFL, O_NONBLOCK
my $n = sysread($alive_r, my $buf, 1);
exit 137 if defined $n && $n == 0;
close $alive_r;
my ($proc_src, $proc_dir, $proc_type) = ('proc', '/proc', 'proc');
syscall($NR{mount}, $proc_src, $proc_dir, $proc_type, 14, 0) == 0 or fail("mounting /proc failed: $!"); # MS_NOSUID|MS_NODEV|MS_NOEXEC

my $child = fork;
defined $child or fail("fork: $!");
if ($child == 0) {
  # C: become the sandbox user with nothing extra, then the command.
  $SIG{$_} = 'DEFAULT' for @FWD;
  my @caps = (${caps});
  for my $cap (@caps) { syscall($NR{prctl}, 24, $cap, 0, 0, 0) == 0 or fail("PR_CAPBSET_DROP($cap) failed: $!"); }
  # syscall() passes strings by pointer and may write through them: only variables, never temporaries.
  my $groups = pack('L', $gid);
  syscall($NR{setgroups}, 1, $groups) == 0 or fail("setgroups failed: $!");
  syscall($NR{setresgid}, $gid, $gid, $gid) == 0 or fail("setresgid failed: $!");
  syscall($NR{setresuid}, $uid, $uid, $uid) == 0 or fail("setresuid failed: $!");
  # Inheritable capabilities survive setresuid; clear every set (header v3, pid 0; two zeroed data structs).
  my ($caphdr, $capdata) = (pack('LL', 0x20080522, 0), pack('L6', 0, 0, 0, 0, 0, 0));
  syscall($NR{capset}, $caphdr, $capdata) == 0 or fail("capset failed: $!");
  my $rlim = pack('QQ', $nproc, $nproc);
  syscall($NR{setrlimit}, 6, $rlim) == 0 or fail("setrlimit(RLIMIT_NPROC) failed: $!") if $nproc > 0;
  chdir($cwd) or do { print STDERR "luminaguard: cannot change to $cwd: $!\\n"; exit 126 };
  syscall($NR{prctl}, 38, 1, 0, 0, 0) == 0 or fail("PR_SET_NO_NEW_PRIVS failed: $!");
  if (length $prog) {
    my $fprog = pack('S x![P] P', length($prog) / 8, $prog);
    syscall($NR{seccomp}, 1, 0, $fprog) == 0 or fail("installing the seccomp filter failed: $!");
  }
  %ENV = %env;
  { no warnings; exec { $ARGV[0] } @ARGV; }
  print STDERR "luminaguard: cannot run $ARGV[0]: $!\\n";
  exit 127;
}
for my $sig (@FWD) { $SIG{$sig} = sub { kill $sig, -1 } }
for (;;) {
  my $p = waitpid(-1, 0);
  if ($p == $child) { exit status_code($?); }
  exit 125 if $p == -1 && ($! + 0) != 4;
}
`;
}

export interface LaunchInput {
  uid: number;
  gid: number;
  /** RLIMIT_NPROC for the command (0: leave it). */
  nproc: number;
  cwd: string;
  /** Seccomp program path inside the sandbox, or undefined for none. */
  seccompPath: string | undefined;
  env: Record<string, string>;
  argv: string[];
}

/** The argv (inside the sandbox) that runs one command through the launcher. */
export function launchArgv(input: LaunchInput): string[] {
  const env = Object.entries(input.env).map(([k, v]) => `${k}=${v}`);
  return [PERL_PATH, LAUNCHER_PATH, "exec", String(input.uid), String(input.gid), String(input.nproc), input.cwd, input.seccompPath ?? "-", String(env.length), ...env, "--", ...input.argv];
}

/** The container's first process. */
export function initArgv(): string[] {
  return [PERL_PATH, LAUNCHER_PATH, "init"];
}
