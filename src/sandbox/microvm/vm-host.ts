/**
 * What the host offers a QEMU process: the binaries (QEMU, bwrap and the
 * launcher's helpers), the accelerator, the TSC rate a TCG guest needs, the
 * read-only view of the system for the jail, our compiled seccomp program, and
 * per-VM device nodes the unprivileged QEMU may open. Each is looked up once.
 */
import { execFile } from "node:child_process";
import { existsSync, lstatSync, readFileSync, readlinkSync, renameSync, writeFileSync } from "node:fs";
import { chown, open, stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { runtimeDir } from "../../config/paths.js";
import { compileProfile, type SeccompLevel } from "../../policy/seccomp/index.js";
import { SandboxError } from "../errors.js";
import { judgeKvm, KVM_DEVICE, parseCpuFlags, qemuTarget } from "./probe.js";
import type { Accel } from "./qemu-args.js";
import type { JailViewEntry } from "./jail-args.js";

const execFileAsync = promisify(execFile);

let accelCache: Promise<Accel> | undefined;

/** KVM when probe.ts judges hardware KVM usable (VMX/SVM and an openable /dev/kvm), else TCG. Cached. */
export function detectAccel(): Promise<Accel> {
  accelCache ??= (async () => {
    let device: "ok" | "missing" | "denied" | { error: string };
    try {
      await (await open(KVM_DEVICE, "r+")).close();
      device = "ok";
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      device = code === "ENOENT" ? "missing" : code === "EACCES" || code === "EPERM" ? "denied" : { error: code ?? String(err) };
    }
    const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
    return judgeKvm(device, parseCpuFlags(cpuinfo)).status === "ok" ? "kvm" : "tcg";
  })();
  return accelCache;
}

let tscCache: number | undefined;

/**
 * The host TSC rate in kHz, which a TCG guest's TSC runs at. /proc/cpuinfo's
 * "cpu MHz" is the kernel's cpu_khz, the TSC rate on hosts without frequency
 * scaling (VMs, servers with constant_tsc); where it scales, the value is
 * approximate and guest time drifts by that ratio, which still beats a hang.
 */
export function hostTscKhz(): number {
  if (tscCache === undefined) {
    const mhz = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1];
    tscCache = mhz ? Math.round(Number(mhz) * 1000) : 1_000_000;
  }
  return tscCache;
}

/** Absolute path of the QEMU system emulator for this host, or E_BACKEND_UNAVAILABLE saying how to install it. */
export function findQemuBinary(): string {
  const { binary, debianPackage } = qemuTarget();
  const path = whichSystem(binary);
  if (!path) throw new SandboxError("E_BACKEND_UNAVAILABLE", `${binary} is not installed; the micro-VM backend needs it. On Debian/Ubuntu: sudo apt-get install ${debianPackage}.`);
  return path;
}

/** Absolute path of a helper of the launcher chain, or E_BACKEND_UNAVAILABLE naming its package. */
export function findTool(name: string): string {
  const path = whichSystem(name);
  const pkg: Record<string, string> = { bwrap: "bubblewrap", nsenter: "util-linux", mknod: "coreutils", nice: "coreutils", bash: "bash" };
  if (!path) throw new SandboxError("E_BACKEND_UNAVAILABLE", `${name} is not installed; the micro-VM jail needs it. On Debian/Ubuntu: sudo apt-get install ${pkg[name] ?? name}.`);
  return path;
}

function whichSystem(name: string): string | undefined {
  for (const dir of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

let viewCache: JailViewEntry[] | undefined;

/** What QEMU needs of the host: /usr (binary, libraries, firmware), the merged-/usr links, the loader cache. */
export function qemuView(): JailViewEntry[] {
  if (viewCache) return viewCache;
  const out: JailViewEntry[] = [];
  for (const path of ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc/ld.so.cache"]) {
    if (!existsSync(path)) continue;
    const st = lstatSync(path);
    out.push(st.isSymbolicLink() ? { kind: "symlink", path, target: readlinkSync(path) } : { kind: "ro-bind", path });
  }
  viewCache = out;
  return out;
}

const programs = new Map<SeccompLevel, string>();

/** The compiled seccomp program for QEMU at `level`, written once per process under the runtime folder. */
export function seccompProgram(level: SeccompLevel): string {
  let path = programs.get(level);
  if (!path) {
    path = join(runtimeDir(), `seccomp-qemu-${level}.bpf`);
    // Another LuminaGuard process may be reading it: write aside, then rename over.
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, compileProfile({ level, mode: "enforce" }), { mode: 0o600 });
    renameSync(tmp, path);
    programs.set(level, path);
  }
  return path;
}

export const TUN_DEVICE = "/dev/net/tun";

/**
 * A copy of a host device node (/dev/kvm, /dev/net/tun) in the VM folder, owned
 * by the VM's uid, bound at the device's path in the jail. The host's nodes are
 * root:kvm 0660 or root-only 0600 (where no udev rule opens them up), and a bind
 * of the host node keeps its owner and mode, so the unprivileged QEMU could not
 * open it. Only the VM's uid (and root) can reach the copy.
 */
export async function deviceNodeFor(device: string, dir: string, uid: number, gid: number): Promise<string> {
  const path = join(dir, `dev-${device.split("/").pop()!}`);
  try {
    const { rdev } = await stat(device);
    const major = (rdev >> 8) & 0xfff;
    const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    await execFileAsync(findTool("mknod"), ["-m", "0600", path, "c", String(major), String(minor)]);
    await chown(path, uid, gid);
  } catch (err) {
    const hint = device === TUN_DEVICE ? "Load the tun module (modprobe tun)." : "Check that the kvm module is loaded.";
    throw new SandboxError("E_VM_START", `Could not give the VM access to ${device}: ${(err as Error).message}. ${hint}`, { cause: err });
  }
  return path;
}
