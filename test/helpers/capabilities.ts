/**
 * Capability checks for tests that need the real host: each returns a reason to
 * skip (printed, never silent) or undefined when the capability is there.
 */
import { execFileSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { runtimeDir } from "../../src/config/paths.js";

function works(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: "ignore", timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

let nsReason: string | undefined | null = null;

/** Why the namespace backend cannot run here, or undefined when it can. */
export function namespaceSkipReason(): string | undefined {
  if (nsReason !== null) return nsReason;
  if (!existsSync("/usr/bin/bwrap")) nsReason = "bubblewrap is not installed (apt-get install bubblewrap)";
  else if (!works("/usr/bin/bwrap", ["--unshare-user", "--unshare-pid", "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/lib", "/lib", "--", "/usr/bin/true"]))
    nsReason = "user namespaces are blocked on this host";
  else if (process.getuid?.() !== 0) nsReason = "cgroup limits need root (or a delegated cgroup v2 subtree)";
  else nsReason = undefined;
  return nsReason;
}

/** Whether python3 exists on the host (the namespace sandbox sees the host's /usr). */
export const hasPython = existsSync("/usr/bin/python3");

/** Print the reason a suite is skipped, so a skip is never silent. */
export function announceSkip(suite: string, reason: string | undefined): boolean {
  if (reason) console.warn(`[skip] ${suite}: ${reason}`);
  return reason !== undefined;
}

let vmReason: string | undefined | null = null;

/** Why the micro-VM backend cannot run here (no QEMU, not root for the jail and cgroups), or undefined. */
export function microvmSkipReason(): string | undefined {
  if (vmReason !== null) return vmReason;
  if (!existsSync("/usr/bin/qemu-system-x86_64")) vmReason = "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)";
  else if (process.getuid?.() !== 0) vmReason = "the micro-VM jail and cgroup limits need root";
  else vmReason = namespaceSkipReason();
  return vmReason;
}

/** Why gVisor cannot run here, or undefined. */
export const RUNSC = ["/usr/local/bin/runsc", "/usr/bin/runsc"].find((p) => existsSync(p));

export function gvisorSkipReason(): string | undefined {
  const runsc = RUNSC;
  if (!runsc) return "runsc is not installed (apt-get install runsc)";
  if (!existsSync("/usr/bin/perl")) return "perl is missing (apt-get install perl-base)";
  if (process.getuid?.() !== 0) return "sandbox limits need root (cgroups) and runsc here runs as root";
  const root = join(runtimeDir(), "gvisor-probe");
  try {
    execFileSync(runsc, ["--root", root, "--network=none", "--ignore-cgroups", "do", "true"], { stdio: "pipe", timeout: 30_000 });
    return undefined;
  } catch (err) {
    return `runsc cannot start a sandbox here: ${String((err as { stderr?: Buffer }).stderr ?? err).trim().split("\n").at(-1)}`;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
