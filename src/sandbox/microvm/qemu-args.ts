/**
 * QEMU's command line for one micro-VM. Pure: every input is explicit, so unit
 * tests pin the exact device set, and a template and its clones (which must
 * have identical devices for a restore to work) come from the same function.
 *
 * Measured on the project's host kind (QEMU 7.2, Debian 6.1 cloud kernel, TCG):
 * - `pit=off` hangs the kernel (no timer to calibrate against), `pic=off` with
 *   the RTC on hangs too, and `rtc=off` slows boot; so TCG keeps PIT, PIC and
 *   RTC and drops only the option ROMs. Under KVM QEMU picks (`auto`).
 * - `acpi=on` lets a guest `poweroff` end QEMU; with `acpi=off` it only halts.
 * - Under TCG the kernel calibrates its TSC against the emulated PIT, which fails
 *   on a loaded host and then hangs the boot: `tcgKernelParams` passes the host's
 *   TSC rate instead (the TCG guest reads the host's TSC).
 * - `exec:` migration forks a shell, which `-sandbox spawn=deny` kills (SIGSYS):
 *   snapshots stream over Unix sockets instead (see snapshot.ts).
 */
import { UsageError } from "../../errors.js";

export type Accel = "kvm" | "tcg";

/** Where guest RAM lives. */
export type RamBacking =
  /** Ordinary anonymous memory (a cold-booted VM that is never snapshotted). */
  | { kind: "anonymous" }
  /** A file the VM writes through to: the template whose RAM clones will map. */
  | { kind: "shared-file"; path: string }
  /**
   * A private copy-on-write mapping of a template's RAM file: the clone's writes
   * stay in its own memory and the file never changes. `readOnlyOpen` opens the
   * file O_RDONLY (`readonly=on,rom=off`), which needs QEMU >= 8.2; older QEMU
   * opens it read-write even though the mapping is private.
   */
  | { kind: "private-file"; path: string; readOnlyOpen?: boolean };

export type NetworkAttachment =
  /** A tap interface by name (QEMU opens /dev/net/tun; the tap must belong to QEMU's uid). */
  | { ifname: string; mac?: string }
  /** A tap file descriptor QEMU inherits. */
  | { fd: number; mac?: string };

export interface QemuInput {
  /** Absolute path of qemu-system-x86_64. */
  binary: string;
  /** Shown in `ps` and QMP's query-name. */
  name: string;
  accel: Accel;
  /** TCG tuning: `thread` (single: one host thread for all vCPUs) and translation-cache size. */
  tcg?: { thread?: "single" | "multi"; tbSizeMiB?: number };
  cpus: number;
  memoryMiB: number;
  ram: RamBacking;
  /** Direct kernel boot. Without it, microvm's firmware finds nothing to boot and idles (enough for QMP, snapshot and clone tests). */
  kernel?: { path: string; initrd?: string; cmdline: string };
  /** Root file system, attached read-only as virtio-blk. */
  rootImage?: string;
  /** Unix socket (QEMU listens) of the guest agent's virtio-serial port `lg.agent`. */
  agentSocket?: string;
  /** Unix socket (QEMU listens) of the serial console ttyS0; without it the VM has no serial port. */
  consoleSocket?: string;
  /** Only for sandboxes with network. */
  network?: NetworkAttachment;
  /** Unix socket (QEMU listens) of the QMP monitor. */
  qmpSocket: string;
  /** Start with `-incoming defer`: wait for a QMP `migrate-incoming` (a clone). */
  incoming?: boolean;
  /** Start with the vCPUs stopped (`-S`) until QMP `cont`. */
  paused?: boolean;
  /** QEMU's own seccomp filter (`-sandbox on,...`); default true. */
  sandbox?: boolean;
}

/** The virtio-serial port name the guest agent looks for. */
export const AGENT_PORT_NAME = "lg.agent";
/** The QEMU device id of that port: QMP's VSERPORT_CHANGE names it when the guest opens or closes the port. */
export const AGENT_PORT_DEVICE = "lgagentport";

/** QEMU's own syscall filter: no obsolete calls, no setuid, no fork/exec, no scheduler or affinity changes. */
export const QEMU_SANDBOX = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/** Machine options of `-M microvm` for each accelerator (see the header for why). */
export function microvmMachine(accel: Accel, opts: { serial: boolean; memoryBackend: boolean }): string {
  const parts = ["microvm", "x-option-roms=off"];
  if (accel === "tcg") parts.push("pit=on", "pic=on", "rtc=on");
  parts.push(`isa-serial=${opts.serial ? "on" : "off"}`, "acpi=on");
  // Guest RAM stays out of QEMU core dumps, and KSM never merges it with other VMs' pages.
  parts.push("dump-guest-core=off", "mem-merge=off");
  if (opts.memoryBackend) parts.push("memory-backend=mem");
  return parts.join(",");
}

/**
 * Kernel parameters a TCG guest needs: the TSC rate to use instead of calibrating
 * it against the emulated PIT (which fails on a busy host and hangs the boot), and
 * no runtime TSC checks (there is no second clock to check against).
 */
export function tcgKernelParams(hostTscKhz: number): string[] {
  return [`tsc_early_khz=${Math.round(hostTscKhz)}`, "tsc=reliable"];
}

/** QEMU's argv (without the binary) for `input`. */
export function qemuArgs(input: QemuInput): string[] {
  assertInput(input);
  const fileRam = input.ram.kind !== "anonymous";
  const a: string[] = [
    "-name", input.name,
    // -display none rather than -nographic: the latter also wires serial and monitor to stdio.
    "-nodefaults", "-no-user-config", "-display", "none",
    "-M", microvmMachine(input.accel, { serial: input.consoleSocket !== undefined, memoryBackend: fileRam }),
    "-accel", accelOption(input),
  ];
  if (input.accel === "kvm") a.push("-cpu", "host");
  a.push("-smp", String(input.cpus), "-m", `${input.memoryMiB}M`);
  if (input.ram.kind !== "anonymous") {
    const share = input.ram.kind === "shared-file" ? "on" : "off";
    const ro = input.ram.kind === "private-file" && input.ram.readOnlyOpen ? ",readonly=on,rom=off" : "";
    a.push("-object", `memory-backend-file,id=mem,size=${input.memoryMiB}M,mem-path=${opt(input.ram.path)},share=${share}${ro}`);
  }
  // The guest restarts or panics (panic=-1): QEMU exits, and the host sees the VM end.
  a.push("-no-reboot");
  if (input.kernel) {
    a.push("-kernel", input.kernel.path);
    if (input.kernel.initrd !== undefined) a.push("-initrd", input.kernel.initrd);
    a.push("-append", input.kernel.cmdline);
  }
  if (input.rootImage !== undefined) {
    a.push(
      "-drive", `file=${opt(input.rootImage)},if=none,format=raw,readonly=on,id=root`,
      "-device", "virtio-blk-device,drive=root",
    );
  }
  if (input.agentSocket !== undefined) {
    // Port 0 is reserved for a console; the agent's port is 1 (/dev/vport*p1 in the guest).
    a.push(
      "-device", "virtio-serial-device,max_ports=2",
      "-chardev", `socket,id=agent,path=${opt(input.agentSocket)},server=on,wait=off`,
      "-device", `virtserialport,chardev=agent,name=${AGENT_PORT_NAME},id=${AGENT_PORT_DEVICE}`,
    );
  }
  if (input.network) {
    const n = input.network;
    const backend = "fd" in n ? `tap,id=net0,fd=${n.fd}` : `tap,id=net0,ifname=${opt(n.ifname)},script=no,downscript=no`;
    a.push("-netdev", backend, "-device", `virtio-net-device,netdev=net0${n.mac ? `,mac=${n.mac}` : ""}`);
  }
  if (input.consoleSocket !== undefined) {
    a.push("-chardev", `socket,id=console,path=${opt(input.consoleSocket)},server=on,wait=off`, "-serial", "chardev:console");
  }
  a.push("-chardev", `socket,id=qmp,path=${opt(input.qmpSocket)},server=on,wait=off`, "-mon", "chardev=qmp,mode=control");
  if (input.sandbox ?? true) a.push("-sandbox", QEMU_SANDBOX);
  if (input.paused) a.push("-S");
  if (input.incoming) a.push("-incoming", "defer");
  return a;
}

function accelOption(input: QemuInput): string {
  if (input.accel === "kvm") return "kvm";
  const parts = ["tcg"];
  if (input.tcg?.thread) parts.push(`thread=${input.tcg.thread}`);
  if (input.tcg?.tbSizeMiB !== undefined) parts.push(`tb-size=${input.tcg.tbSizeMiB}`);
  return parts.join(",");
}

/** A value inside a QEMU option list: commas are escaped by doubling them. */
function opt(value: string): string {
  return value.replaceAll(",", ",,");
}

function assertInput(input: QemuInput): void {
  const bad = (what: string): never => {
    throw new UsageError(`Invalid micro-VM settings: ${what}.`);
  };
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(input.name)) bad(`name must be 1-64 letters, digits, '.', '_' or '-', got ${JSON.stringify(input.name)}`);
  if (!Number.isInteger(input.cpus) || input.cpus < 1 || input.cpus > 64) bad(`cpus must be an integer 1..64, got ${input.cpus}`);
  if (!Number.isInteger(input.memoryMiB) || input.memoryMiB < 16) bad(`memoryMiB must be an integer >= 16, got ${input.memoryMiB}`);
  if (input.tcg?.tbSizeMiB !== undefined && (!Number.isInteger(input.tcg.tbSizeMiB) || input.tcg.tbSizeMiB < 1)) bad(`tcg.tbSizeMiB must be a positive integer`);
  if (input.network && "mac" in input.network && input.network.mac !== undefined && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(input.network.mac)) bad(`network.mac must look like 52:54:00:12:34:56`);
  if (input.network && "ifname" in input.network && !/^[A-Za-z0-9_.-]{1,15}$/.test(input.network.ifname)) bad(`network.ifname must be a Linux interface name`);
  if (input.incoming && input.ram.kind === "shared-file") bad("a clone (-incoming) must map the template RAM privately, or its writes would change the template");
  for (const p of [input.binary, input.qmpSocket, input.agentSocket, input.consoleSocket, input.rootImage, input.kernel?.path, input.kernel?.initrd, "path" in input.ram ? input.ram.path : undefined]) {
    if (p !== undefined && (!p.startsWith("/") || p.includes("\0"))) bad(`paths must be absolute without NUL bytes, got ${JSON.stringify(p)}`);
  }
}
