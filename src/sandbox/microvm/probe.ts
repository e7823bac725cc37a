/**
 * Host checks for the micro-VM backend: can QEMU use KVM here, or must it fall
 * back to TCG (software emulation), and does the installed QEMU have the machine
 * type we boot.
 *
 * "/dev/kvm opens" is not enough to claim KVM: nested "PVM" hosts expose a
 * /dev/kvm on CPUs without VMX/SVM, and a real guest dies there with "KVM
 * internal error". So KVM is reported as hardware only when the CPU flags show
 * VMX or SVM. Even then this check does not boot a VM: a tiny KVM boot, done
 * once and cached, belongs to the micro-VM backend (it needs the guest image).
 */
import { open, readFile } from "node:fs/promises";
import { describeFailure, whichExecutable, parseVersion, runCommand, type Probe, type ProbeOutcome } from "../../probe.js";

export const KVM_DEVICE = "/dev/kvm";

/** The CPU flags of the first processor in /proc/cpuinfo ("flags" on x86, "Features" on arm64). */
export function parseCpuFlags(cpuinfo: string): Set<string> {
  const line = /^(?:flags|Features)\s*:(.*)$/m.exec(cpuinfo);
  return new Set((line?.[1] ?? "").split(/\s+/).filter((f) => f !== ""));
}

/** What the CPU flags say about virtualization: VMX (Intel) / SVM (AMD), and whether we are a guest ourselves. */
export function cpuVirtualization(flags: Set<string>): { extension: "vmx" | "svm" | undefined; guest: boolean } {
  const extension = flags.has("vmx") ? "vmx" : flags.has("svm") ? "svm" : undefined;
  return { extension, guest: flags.has("hypervisor") };
}

/** What opening /dev/kvm read-write gave. */
export type KvmDeviceState = "ok" | "missing" | "denied" | { error: string };

const TCG_FALLBACK = "micro-VMs will use QEMU TCG (slow but works)";

/**
 * Classify KVM from the device and the CPU flags. Status "ok" means hardware KVM;
 * every other status means micro-VMs run under TCG.
 */
export function judgeKvm(device: KvmDeviceState, flags: Set<string>, arch: string = process.arch): ProbeOutcome {
  const { extension, guest } = cpuVirtualization(flags);
  // Said in every non-hardware verdict: it is what decides the fix.
  const cpu = `CPU: ${extension ?? "no vmx/svm"}${guest ? ", running as a VM (hypervisor flag)" : ""}`;
  if (device === "missing") {
    if (extension) return { status: "warn", detail: `no ${KVM_DEVICE} although the CPU has ${extension}: ${TCG_FALLBACK}`, fix: `Load the KVM module: sudo modprobe ${extension === "vmx" ? "kvm_intel" : "kvm_amd"}, and enable virtualization (VT-x/AMD-V) in the firmware.` };
    return { status: "warn", detail: `no ${KVM_DEVICE} (${cpu}): ${TCG_FALLBACK}`, fix: guest ? "Enable nested virtualization for this VM in its hypervisor, or accept TCG." : "Enable virtualization (VT-x/AMD-V) in the firmware and load kvm_intel or kvm_amd, or accept TCG." };
  }
  if (device === "denied") {
    return { status: "warn", detail: `${KVM_DEVICE} exists but this user cannot open it read-write (${cpu}): ${TCG_FALLBACK}`, fix: "Add the user to the kvm group (sudo usermod -aG kvm $USER) and log in again." };
  }
  if (typeof device === "object") {
    return { status: "warn", detail: `${KVM_DEVICE} could not be opened (${device.error}; ${cpu}): ${TCG_FALLBACK}`, fix: "Check that the kvm module loaded cleanly (dmesg | grep -i kvm)." };
  }
  if (arch === "arm64") {
    // arm64 cpuinfo has no flag for EL2; a /dev/kvm that opens is the best static evidence.
    return { status: "ok", detail: `KVM: hardware (${KVM_DEVICE} opens read-write; arm64 shows no virtualization flag to cross-check)` };
  }
  if (extension) {
    return { status: "ok", detail: `KVM: hardware (${extension}); ${guest ? "nested inside another hypervisor" : "bare metal"}` };
  }
  return { status: "warn", detail: `KVM device present but no VMX/SVM: nested/emulated (e.g. PVM); ${TCG_FALLBACK} (${cpu})`, fix: "Nothing to do for TCG. For KVM speed, run on a machine (or a VM with nested virtualization) whose CPU shows vmx or svm." };
}

/** Open /dev/kvm read-write the way QEMU does, and close it again. */
async function openKvm(): Promise<KvmDeviceState> {
  try {
    const fh = await open(KVM_DEVICE, "r+");
    await fh.close();
    return "ok";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "missing";
    if (code === "EACCES" || code === "EPERM") return "denied";
    return { error: code ?? String(err) };
  }
}

/** The QEMU system emulator and the machine type we boot, for a Node `process.arch`. */
export function qemuTarget(arch: string = process.arch): { binary: string; machine: string; debianPackage: string } {
  // aarch64 QEMU has no "microvm" machine; "virt" is its minimal equivalent.
  if (arch === "arm64") return { binary: "qemu-system-aarch64", machine: "virt", debianPackage: "qemu-system-arm" };
  return { binary: "qemu-system-x86_64", machine: "microvm", debianPackage: "qemu-system-x86" };
}

/** Machine names from `qemu-system-* -M help` (first column after the header). */
export function parseQemuMachines(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\S+)\s+\S/.exec(line);
    if (m && !line.startsWith("Supported machines")) out.push(m[1]!);
  }
  return out;
}

/** Classify the QEMU install from its `--version` and `-M help` output. */
export function judgeQemu(path: string, versionText: string, machinesText: string, machine: string): ProbeOutcome {
  // "QEMU emulator version 7.2.22 (Debian ...)": take the number after "version", not the Debian epoch.
  const version = /version\s+(\d+\.\d+(?:\.\d+)?)/.exec(versionText)?.[1] ?? parseVersion(versionText) ?? "unknown version";
  if (!parseQemuMachines(machinesText).includes(machine)) {
    return { status: "warn", detail: `QEMU ${version} at ${path} has no "-M ${machine}" machine`, fix: "Install QEMU 4.2 or later built with the microvm machine (Debian: qemu-system-x86)." };
  }
  return { status: "ok", detail: `QEMU ${version} at ${path}; -M ${machine} available` };
}

const kvmProbe: Probe = {
  id: "microvm.kvm",
  title: "KVM acceleration",
  onError: "warn",
  async run() {
    const [device, cpuinfo] = await Promise.all([openKvm(), readFile("/proc/cpuinfo", "utf8").catch(() => "")]);
    return judgeKvm(device, parseCpuFlags(cpuinfo));
  },
};

const qemuProbe: Probe = {
  id: "microvm.qemu",
  title: "QEMU",
  onError: "warn",
  async run(signal) {
    const target = qemuTarget();
    const path = await whichExecutable(target.binary);
    if (!path) return { status: "warn", detail: `${target.binary} is not installed: the micro-VM backend is unavailable`, fix: `sudo apt-get install ${target.debianPackage}` };
    const [ver, machines] = await Promise.all([runCommand(path, ["--version"], { signal }), runCommand(path, ["-M", "help"], { signal })]);
    if (!ver.ok) return { status: "warn", detail: `${path} --version failed: ${describeFailure(ver)}`, fix: `Reinstall QEMU: sudo apt-get install --reinstall ${target.debianPackage}` };
    return judgeQemu(path, ver.stdout, machines.stdout, target.machine);
  },
};

const imageProbe: Probe = {
  id: "microvm.image",
  title: "micro-VM guest image",
  onError: "warn",
  async run() {
    // Loaded here, not at the top: doctor's other checks should not pay for it.
    const { currentImageId, listImages } = await import("./image.js");
    const images = (await listImages()).filter((e) => "image" in e);
    const newest = images[0];
    if (!newest) return { status: "warn", detail: "no guest image is built: micro-VM sandboxes cannot start", fix: "sudo ./bin/luminaguard image build (downloads Debian packages once; make test and make demo do it too)" };
    const current = await currentImageId().catch(() => undefined);
    const m = newest.image.manifest;
    if (current !== undefined && !images.some((e) => e.id === current)) {
      return { status: "warn", detail: `the built image ${newest.id} is out of date for this checkout (wanted ${current})`, fix: "sudo ./bin/luminaguard image build" };
    }
    return { status: "ok", detail: `${current ?? newest.id}: kernel ${m.kernelRelease}, ${m.packages.length} packages, built ${m.createdAt}` };
  },
};

/** The micro-VM checks, in display order. */
export function microvmProbes(): Probe[] {
  return [kvmProbe, qemuProbe, imageProbe];
}
