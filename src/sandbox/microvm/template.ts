/**
 * One snapshot template and the clones made from it.
 *
 * A template is a VM booted once from the guest image until its agent answered
 * and a confined command ran (so the guest's page cache holds what every exec
 * needs), then paused and saved: its RAM stays in a /dev/shm file, its device
 * state in a small file. A clone is a QEMU that maps that RAM copy-on-write and
 * loads the device state: no boot, no agent start, only the restore.
 *
 * `prestarted` QEMU processes per template are kept started and waiting for the
 * state (`-incoming defer`), so taking a clone costs the restore and not QEMU's
 * own start (~40 ms here). They map this template's RAM file, so they belong to
 * it and die with it.
 */
import { connect as netConnect } from "node:net";
import { SandboxError } from "../errors.js";
import { newSandboxId } from "../ids.js";
import { GuestClient } from "../agent-client.js";
import { createTemplateFiles, restore, saveTemplate, startIncoming, type TemplateFiles } from "./snapshot.js";
import { startVm, type StartVmOptions, type VmProcess } from "./vm-process.js";
import { scratchTap, type ScratchTap, type VmTap } from "./network.js";

/** What a VM is made of; the template and its clones must agree on all of it. */
export interface VmShape {
  memoryMiB: number;
  cpus: number;
  /** A virtio-net NIC on a tap (networked sandboxes): template and clones start on a tap in a namespace of their own (see network.ts). */
  network?: boolean;
}

/** The files of a guest image (see image.ts). */
export interface BootImage {
  kernel: string;
  initrd: string;
  rootfs: string;
  cmdline: string;
  /** Content hash: a template is for exactly one image. */
  hash: string;
}

/** How long a booting guest may take to start its agent (TCG boots slowly, Node under TCG more so). */
export const BOOT_AGENT_TIMEOUT_MS = 120_000;
/** How long a restored clone's agent may take to answer (it is already running). */
export const CLONE_AGENT_TIMEOUT_MS = 15_000;

export const shapeKey = (image: BootImage, shape: VmShape): string => `${image.hash.slice(0, 12)}-${shape.memoryMiB}m-${shape.cpus}c${shape.network ? "-net" : ""}`;

/** The device set of a VM of this image and shape (identical for template, clones and cold boots). */
export function vmDevices(image: BootImage, shape: VmShape): Omit<StartVmOptions, "id" | "ram" | "incoming" | "memoryMiB"> {
  return {
    cpus: shape.cpus,
    kernel: { path: image.kernel, initrd: image.initrd, cmdline: image.cmdline },
    rootImage: image.rootfs,
    agent: true,
    console: true,
    // Prepared at a low priority; the backend raises a VM to normal when it hands it out.
    nice: PREPARE_NICE,
  };
}

/** Nice value of VMs being booted, restored or warmed (see setVmPriority). */
export const PREPARE_NICE = 10;

/** Connect to a VM's agent socket and wait for the agent's hello. */
export async function connectAgent(vm: VmProcess, helloTimeoutMs: number): Promise<GuestClient> {
  const socket = await new Promise<import("node:net").Socket>((resolve, reject) => {
    const s = netConnect({ path: vm.agentSocketPath });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  }).catch((err: unknown) => {
    throw new SandboxError("E_GUEST_LOST", `Could not connect to the guest agent channel of VM ${vm.id}: ${(err as Error).message}.`, { cause: err });
  });
  // Waiting for hello races QEMU dying (a guest panic with panic=-1 ends QEMU).
  const died = vm.exited.then((end) => {
    throw new SandboxError("E_VM_CRASHED", `VM ${vm.id} exited (${end.signal ?? `code ${end.code}`}) before its agent answered. Its console said: ${vm.consoleLog().trim().slice(-1500) || "nothing"}`);
  });
  try {
    return await Promise.race([GuestClient.connect(socket, { helloTimeoutMs }), died]);
  } catch (err) {
    socket.destroy();
    if (err instanceof SandboxError && err.code === "E_GUEST_LOST") {
      throw new SandboxError("E_GUEST_LOST", `${err.message} Console: ${vm.consoleLog().trim().slice(-1500) || "nothing"}`, { cause: err });
    }
    throw err;
  }
}

/** A clone's QEMU waiting for the state; a networked one with the namespace its tap is parked in. */
interface Waiting {
  vm: VmProcess;
  parking: ScratchTap | undefined;
}

export interface TemplateOptions {
  image: BootImage;
  shape: VmShape;
  /** QEMU processes to keep waiting for this template's state. */
  prestarted: number;
  /** Run in a booted guest before it is saved: warms the guest's page cache for every clone. */
  prepare(agent: GuestClient): Promise<void>;
}

export class Template {
  readonly createdAt = Date.now();
  /** Clones handed out. */
  served = 0;
  private readonly waiting: Promise<Waiting>[] = [];
  private dropped = false;

  private constructor(
    private readonly opts: TemplateOptions,
    readonly files: TemplateFiles,
    readonly name: string,
    /** Boot to agent ready, and the save, in ms. */
    readonly timings: { bootMs: number; saveMs: number },
  ) {
    this.refill();
  }

  /** Boot a VM of `image` and `shape`, prepare it and save it as a template. */
  static async build(opts: TemplateOptions): Promise<Template> {
    const name = `tpl-${shapeKey(opts.image, opts.shape)}-${Date.now().toString(36)}`;
    const files = await createTemplateFiles(name, opts.shape.memoryMiB);
    let vm: VmProcess | undefined;
    // A networked template's NIC needs a tap like its clones' (see network.ts); it gets one nobody else can reach.
    let tap: ScratchTap | undefined;
    try {
      const started = performance.now();
      if (opts.shape.network) tap = await scratchTap();
      vm = await startVm({ ...vmDevices(opts.image, opts.shape), id: name, memoryMiB: opts.shape.memoryMiB, ram: { kind: "shared-file", path: files.ramPath }, ...(tap ? { network: { ifname: tap.ifname, netnsPath: tap.netnsPath } } : {}) });
      const agent = await connectAgent(vm, BOOT_AGENT_TIMEOUT_MS);
      try {
        await opts.prepare(agent);
      } finally {
        // Clones restore a guest whose host has gone: the agent waits for the next one.
        agent.close();
      }
      const booted = performance.now();
      const saved = await saveTemplate(vm, files.statePath);
      return new Template(opts, files, name, { bootMs: booted - started, saveMs: saved.totalMs });
    } catch (err) {
      await files.remove().catch(() => {});
      throw err;
    } finally {
      await vm?.kill().catch(() => {});
      await tap?.remove().catch(() => {});
    }
  }

  get ageMs(): number {
    return Date.now() - this.createdAt;
  }

  /** Keep `prestarted` QEMUs waiting; a failed start is dropped (the next take starts one itself). */
  private refill(): void {
    while (!this.dropped && this.waiting.length < this.opts.prestarted) {
      const p = this.startOne();
      p.catch(() => {
        const i = this.waiting.indexOf(p);
        if (i >= 0) void this.waiting.splice(i, 1);
      });
      this.waiting.push(p);
    }
  }

  /**
   * Clones are named like sandboxes: the sandbox takes its VM's id. A networked
   * clone's QEMU starts on a tap in a namespace of its own ("parked"): its
   * sandbox's namespace does not exist yet, and a tap can move between
   * namespaces with QEMU attached (clone() moves it).
   */
  private async startOne(): Promise<Waiting> {
    const parking = this.opts.shape.network ? await scratchTap() : undefined;
    try {
      const vm = await startIncoming(this.files, { ...vmDevices(this.opts.image, this.opts.shape), id: newSandboxId(), ...(parking ? { network: { ifname: parking.ifname, netnsPath: parking.netnsPath } } : {}) });
      return { vm, parking };
    } catch (err) {
      await parking?.remove().catch(() => {});
      throw err;
    }
  }

  /**
   * A running clone: a waiting QEMU (or a new one) with the template's state
   * loaded and its vCPUs running. The caller owns it (and must reseed it).
   *
   * A networked template's clones need `network`: called with the clone's VM
   * (its id is the sandbox id) and its parked tap while the state loads, it must
   * move the tap to where the sandbox's network is. Rejecting fails the clone.
   */
  async clone(o: { network?: (vm: VmProcess, parked: VmTap) => Promise<void> } = {}): Promise<{ vm: VmProcess; restoreMs: number; prestarted: boolean }> {
    if (this.dropped) throw new SandboxError("E_VM_SNAPSHOT", `Template ${this.name} was dropped; take a clone from its replacement.`);
    if (Boolean(this.opts.shape.network) !== (o.network !== undefined)) {
      throw new SandboxError("E_VM_SNAPSHOT", `Template ${this.name} ${this.opts.shape.network ? "has a NIC: its clones need a network (clone({ network }))" : "has no NIC: its clones cannot take a network"}; a clone's devices must match its template's.`);
    }
    const next = this.waiting.shift();
    this.refill();
    let w: Waiting | undefined;
    const prestarted = next !== undefined;
    try {
      w = await (next ?? this.startOne());
      const vm = w.vm;
      // Independent: the restore and the network's plumbing (the guest configures eth0 only later, when told).
      const [restored, plumbed] = await Promise.allSettled([restore(vm, this.files.statePath), o.network && w.parking ? o.network(vm, w.parking) : Promise.resolve()]);
      if (restored.status === "rejected") throw restored.reason;
      if (plumbed.status === "rejected") throw plumbed.reason;
      this.served++;
      return { vm, restoreMs: restored.value.totalMs, prestarted };
    } catch (err) {
      await w?.vm.kill().catch(() => {});
      throw err;
    } finally {
      // The tap has moved out, or goes with QEMU (killed above): the parking namespace's name is no longer needed.
      await w?.parking?.remove().catch(() => {});
    }
  }

  /** Stop the waiting QEMUs and delete the files. Clones already running keep their private mapping. */
  async drop(): Promise<void> {
    this.dropped = true;
    const waiting = this.waiting.splice(0);
    await Promise.allSettled(
      waiting.map(async (p) => {
        const w = await p;
        await w.vm.kill();
        await w.parking?.remove();
      }),
    );
    await this.files.remove();
  }
}
