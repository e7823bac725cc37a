/**
 * The micro-VM backend: every sandbox is its own QEMU `microvm` guest.
 *
 * create() takes a clone of a snapshot template (one per image and VM shape,
 * booted once per process), reseeds it (clones share the template's RNG state,
 * clock and hostname), configures the agent's confinement for the spec, and
 * runs one command to warm QEMU's translation cache; the SandboxPool in front
 * keeps such sandboxes ready, so a lease costs none of it. When no template can
 * be made, sandboxes cold-boot instead and the stats count the fallback.
 */
import { randomBytes } from "node:crypto";
import type { Backend, Sandbox, SandboxSpec } from "../types.js";
import { SandboxError } from "../errors.js";
import { SampleWindow } from "../percentiles.js";
import { compileProfile } from "../../policy/seccomp/index.js";
import type { GuestClient, GuestExit } from "../agent-client.js";
import { whichExecutable } from "../../probe.js";
import { MicrovmSandbox } from "./sandbox.js";
import { DEFAULT_ENV } from "../namespace/bwrap-args.js";
import { ForegroundGate, type ForegroundOptions } from "./foreground.js";
import { qemuTarget } from "./probe.js";
import { BOOT_AGENT_TIMEOUT_MS, CLONE_AGENT_TIMEOUT_MS, connectAgent, shapeKey, Template, vmDevices, type BootImage, type VmShape } from "./template.js";
import { setVmPriority, startVm, sweepStaleVms, VM_UID, type VmProcess } from "./vm-process.js";
// --- network (issue 5) ---
import type { SandboxNetworking } from "../network.js";
import { LazyNetworking } from "../lazy-networking.js";
import { newSandboxId } from "../ids.js";
import { PendingVmNetwork, sweepStaleScratchTaps, type VmNetwork } from "./network.js";
import { FirewallError } from "../../policy/firewall/errors.js";
// --- end network ---

const MIB = 1024 * 1024;
/** Guest RAM beyond the sandbox's memory limit: the guest kernel and the agent (Node) live there. */
export const GUEST_OVERHEAD_MIB = 96;

export interface MicrovmBackendOptions {
  /** The guest image; default: the image named `imageName`, built when missing. */
  image?: () => Promise<BootImage>;
  /** Name of the guest image (default "default"). */
  imageName?: string;
  /** QEMU processes kept waiting per template (default 1). */
  prestarted?: number;
  /** Rebuild a template older than this (default 60 min; 0 = never). */
  templateMaxAgeMs?: number;
  /** Use snapshot templates (default true); false cold-boots every sandbox. */
  snapshots?: boolean;
  /** Guest uid commands run as (default 65534). */
  sandboxUid?: number;
  /** Agent liveness checks while commands run (default DEFAULT_HEARTBEAT). */
  heartbeat?: { intervalMs: number; timeoutMs: number };
  /** Progress lines of long steps (building a missing guest image takes minutes). */
  onProgress?: (line: string) => void;
  /** Firewall and egress proxy for sandboxes whose policy is not "none" (default: one made on first use and closed by close()). */
  networking?: SandboxNetworking;
  /** How long preparing a sandbox yields to callers' new commands (default DEFAULT_FOREGROUND; see foreground.ts). */
  foreground?: ForegroundOptions;
}

export interface MicrovmStats {
  templates: { key: string; ageMs: number; served: number; bootMs: number; saveMs: number }[];
  clonesServed: number;
  coldBoots: number;
  /** Sandboxes cold-booted because no template could be made. */
  fallbacks: number;
  /** Restore of a clone (migrate-incoming + cont), ms. */
  restoreMs: { p50: number; p95: number; p99: number };
  /** create() from start to a ready sandbox, ms. */
  createMs: { p50: number; p95: number; p99: number };
}

/** The VM a spec needs: RAM for its memory limit plus the guest's own, one vCPU per started core of quota. */
export function shapeFor(spec: SandboxSpec): VmShape {
  return { memoryMiB: Math.ceil(spec.limits.memoryBytes / MIB) + GUEST_OVERHEAD_MIB, cpus: Math.max(1, Math.ceil(spec.limits.cpus)), ...(spec.network !== "none" ? { network: true } : {}) };
}

export class MicrovmBackend implements Backend {
  readonly name = "microvm" as const;
  private readonly templates = new Map<string, TemplateEntry>();
  private readonly live = new Set<MicrovmSandbox>();
  private readonly restoreMs = new SampleWindow();
  private readonly createMs = new SampleWindow();
  private readonly programs = new Map<string, Uint8Array>();
  private counts = { clonesServed: 0, coldBoots: 0, fallbacks: 0 };
  private readonly foreground: ForegroundGate;
  private imagePromise: Promise<BootImage> | undefined;
  private swept: Promise<unknown> | undefined;
  private closed = false;
  private readonly lazyNet: LazyNetworking;

  constructor(private readonly opts: MicrovmBackendOptions = {}) {
    this.lazyNet = new LazyNetworking(opts.networking);
    this.foreground = new ForegroundGate(opts.foreground);
  }

  /** The firewall and egress proxy, made on the first networked sandbox (loaded lazily, as in the namespace backend). */
  networking(): Promise<SandboxNetworking> {
    return this.lazyNet.get();
  }

  private image(): Promise<BootImage> {
    this.imagePromise ??= (this.opts.image ?? (() => defaultImage(this.opts.imageName, this.opts.onProgress)))().catch((err: unknown) => {
      this.imagePromise = undefined; // a later call may succeed (image built meanwhile)
      throw err;
    });
    return this.imagePromise;
  }

  async check(): Promise<void> {
    const { binary, debianPackage } = qemuTarget();
    if (!(await whichExecutable(binary))) {
      throw new SandboxError("E_BACKEND_UNAVAILABLE", `${binary} is not installed; the micro-VM backend needs it. On Debian/Ubuntu: sudo apt-get install ${debianPackage}.`);
    }
    await this.image();
  }

  async create(spec: SandboxSpec): Promise<Sandbox> {
    if (this.closed) throw new SandboxError("E_BACKEND_UNAVAILABLE", "The micro-VM backend was closed; make a new one.");
    if (spec.workspace !== undefined) {
      throw new SandboxError("E_WORKSPACE", "A micro-VM keeps its /workspace inside the guest; host folders cannot be shared with it yet. Copy files in with sandbox.files, or use the namespace backend for --workspace.");
    }
    if ((spec.mounts ?? []).length > 0) {
      throw new SandboxError("E_MOUNT", "A micro-VM cannot see host paths, so sandbox.mounts cannot be used with it. Copy what the sandbox needs in with sandbox.files, or use the namespace or gvisor backend.");
    }
    const started = performance.now();
    // Leftovers of a crashed earlier LuminaGuard (VM folders, shm files, cgroups, parked taps' namespaces) go before we add ours.
    this.swept ??= Promise.all([sweepStaleVms(), sweepStaleScratchTaps()]).catch(() => undefined);
    await this.swept;
    const image = await this.image();
    const shape = shapeFor(spec);
    // The firewall's network, attached once the VM's id is known (see network.ts). Its
    // checks (root, nft, ip) first: a host that cannot do it fails here with the fix.
    const pending = spec.network === "none" ? undefined : await PendingVmNetwork.start(await this.networking(), spec.network);
    try {
      return await this.createVm(spec, image, shape, pending, started);
    } catch (err) {
      await pending?.abandon(); // after createVm killed the VM
      throw err;
    }
  }

  private async createVm(spec: SandboxSpec, image: BootImage, shape: VmShape, pending: PendingVmNetwork | undefined, started: number): Promise<Sandbox> {
    let vm: VmProcess;
    let cold = false;
    if (this.opts.snapshots === false) {
      vm = await this.coldBoot(image, shape, await pending?.forColdBoot());
      cold = true;
    } else {
      try {
        const tpl = await this.template(image, shape);
        await this.foreground.quiet();
        const c = await tpl.clone(pending ? { network: pending.forClone } : {});
        this.restoreMs.add(c.restoreMs);
        this.counts.clonesServed++;
        vm = c.vm;
      } catch (err) {
        if (err instanceof SandboxError && err.code === "E_BACKEND_UNAVAILABLE") throw err;
        // The network's plumbing failed, not the snapshot: a cold boot would not help.
        if (err instanceof FirewallError) throw err;
        this.counts.fallbacks++;
        process.emitWarning(`micro-VM snapshot failed, cold-booting instead: ${(err as Error).message}`, { code: "LUMINAGUARD_MICROVM_FALLBACK" });
        vm = await this.coldBoot(image, shape, await pending?.forColdBoot());
        cold = true;
      }
    }
    const net = pending?.net;
    let agent: GuestClient | undefined;
    try {
      agent = await connectAgent(vm, cold ? BOOT_AGENT_TIMEOUT_MS : CLONE_AGENT_TIMEOUT_MS);
      // Before anything runs: clones of one template start with the same kernel RNG state, clock and hostname.
      await agent.reseed({ entropy: randomBytes(64), timeMs: Date.now(), hostname: vm.id });
      // Starting the spawner and the warm-up are the guest's heaviest work: after callers' new commands.
      await this.foreground.quiet();
      const uid = this.opts.sandboxUid ?? VM_UID;
      await Promise.all([
        agent.configure({ confine: "bwrap", uid, gid: uid, seccomp: this.seccomp(spec), limits: { memoryBytes: spec.limits.memoryBytes, pids: spec.limits.pids } }),
        // Independent of configure: the guest's eth0 takes the sandbox address the firewall's rules expect.
        net && agent.network(net.guest),
      ]);
      // A new QEMU translates the guest's code afresh: the first commands are slow (~150 ms
      // under TCG). Pay it here, where the pool hides it, not in the caller's first exec.
      await this.foreground.quiet();
      const end = await warmExecs(agent, CLONE_WARM_EXECS);
      if (end.exitCode !== 0) throw new SandboxError("E_SANDBOX_START", `The micro-VM's first command failed (${end.signal ?? `exit code ${end.exitCode}`}); the guest's confinement does not work. Console: ${vm.consoleLog().trim().slice(-1000)}`);
    } catch (err) {
      agent?.close();
      await vm.kill().catch(() => {});
      throw err;
    }
    // Ready: from here on it runs the caller's work, ahead of the pool's refills (PREPARE_NICE).
    setVmPriority(vm.pid, 0);
    const sb = new MicrovmSandbox({
      id: vm.id,
      spec,
      vm,
      agent,
      network: net,
      onDestroyed: () => this.live.delete(sb),
      onExec: () => this.foreground.begin(),
      ...(this.opts.heartbeat ? { heartbeat: this.opts.heartbeat } : {}),
    });
    this.live.add(sb);
    this.createMs.add(performance.now() - started);
    return sb;
  }

  private async coldBoot(image: BootImage, shape: VmShape, net?: VmNetwork): Promise<VmProcess> {
    this.counts.coldBoots++;
    return startVm({ ...vmDevices(image, shape), id: net?.sandbox.attachment.sandboxId ?? newSandboxId(), memoryMiB: shape.memoryMiB, ...(net ? { network: net.tap } : {}) });
  }

  /** The compiled seccomp program for a spec (the guest runs the same x86_64 kernel ABI). */
  private seccomp(spec: SandboxSpec): Uint8Array {
    const key = `${spec.seccomp.level}-${spec.seccomp.mode}`;
    let prog = this.programs.get(key);
    if (!prog) {
      prog = compileProfile({ level: spec.seccomp.level, mode: spec.seccomp.mode, arch: "x86_64" });
      this.programs.set(key, prog);
    }
    return prog;
  }

  /** The template for this image and shape: built on first use, rebuilt when too old. */
  private async template(image: BootImage, shape: VmShape): Promise<Template> {
    const key = shapeKey(image, shape);
    // Templates of another image are stale: the image was rebuilt.
    for (const [k, t] of this.templates) {
      if (!k.startsWith(`${image.hash.slice(0, 12)}-`)) {
        this.templates.delete(k);
        void t.current.then((tpl) => tpl.drop()).catch(() => {});
      }
    }
    let entry = this.templates.get(key);
    if (!entry) {
      const e: TemplateEntry = { current: this.buildTemplate(image, shape) };
      e.current.then(
        (t) => (e.ready = t),
        // A failed build is not cached: the next create() tries again.
        () => {
          if (this.templates.get(key) === e) this.templates.delete(key);
        },
      );
      this.templates.set(key, e);
      entry = e;
    }
    const tpl = await entry.current;
    const maxAge = this.opts.templateMaxAgeMs ?? 60 * 60_000;
    if (maxAge > 0 && tpl.ageMs > maxAge && !entry.next) {
      // Refresh in the background; the old template serves until the new one is ready.
      const e = entry;
      e.next = this.buildTemplate(image, shape);
      e.next.then(
        (fresh) => {
          e.current = Promise.resolve(fresh);
          e.ready = fresh;
          e.next = undefined;
          void tpl.drop().catch(() => {});
        },
        () => {
          e.next = undefined;
        },
      );
    }
    return tpl;
  }

  private buildTemplate(image: BootImage, shape: VmShape): Promise<Template> {
    return Template.build({
      image,
      shape,
      prestarted: this.opts.prestarted ?? 1,
      prepare: async (agent) => {
        // One confined command pulls setpriv, bwrap, sh and their libraries into the
        // guest's page cache, which every clone then shares.
        await agent.configure({ confine: "bwrap", uid: VM_UID, gid: VM_UID });
        const end = await agent.exec(["sh", "-c", "true"], { env: {}, cwd: "/workspace", stdin: false }).exited;
        if (end.exitCode !== 0) throw new SandboxError("E_SANDBOX_START", `A confined command failed in the template VM (${end.signal ?? `exit code ${end.exitCode}`}).`);
        // Then the path a sandbox's commands take (spawner, per-exec cgroups, stdin pipe),
        // often enough for V8 to compile the agent's side of it: clones inherit that code
        // and skip the tier-ups. The spawner is stopped again: each clone starts its own.
        await agent.configure({ confine: "bwrap", uid: VM_UID, gid: VM_UID, limits: { memoryBytes: 64 * MIB, pids: 64 } });
        const warm = await warmExecs(agent, TEMPLATE_WARM_EXECS);
        if (warm.exitCode !== 0) throw new SandboxError("E_SANDBOX_START", `A command through the sandbox's launcher failed in the template VM (${warm.signal ?? `exit code ${warm.exitCode}`}).`);
        await agent.configure({ confine: "bwrap", uid: VM_UID, gid: VM_UID, spawner: false });
      },
    });
  }

  stats(): MicrovmStats {
    const templates: MicrovmStats["templates"] = [];
    for (const [key, e] of this.templates) {
      const t = e.ready;
      if (t) templates.push({ key, ageMs: t.ageMs, served: t.served, bootMs: t.timings.bootMs, saveMs: t.timings.saveMs });
    }
    return {
      templates,
      ...this.counts,
      restoreMs: this.restoreMs.percentiles(50, 95, 99),
      createMs: this.createMs.percentiles(50, 95, 99),
    };
  }

  /** Destroy every sandbox still alive and drop the templates (their waiting QEMUs and files). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.live].map((s) => s.destroy()));
    const all = [...this.templates.values()].flatMap((e) => [e.current, ...(e.next ? [e.next] : [])]);
    this.templates.clear();
    await Promise.allSettled(all.map(async (p) => (await p).drop()));
    // Last: the proxy and the firewall's helpers, once no sandbox uses them (one given to us is the giver's to close).
    await this.lazyNet.close();
  }
}

interface TemplateEntry {
  current: Promise<Template>;
  /** `current` once built (stats read it synchronously). */
  ready?: Template;
  /** A replacement being built while `current` serves. */
  next?: Promise<Template> | undefined;
}

/** Commands a template runs through the launcher before it is saved (V8 tiers up a function after some calls). */
const TEMPLATE_WARM_EXECS = 12;
/** Commands each clone runs before it is handed out (its QEMU's translation cache starts empty). */
const CLONE_WARM_EXECS = 2;

/**
 * Run `true` `n` times the way MicrovmSandbox.exec runs a caller's command (stdin
 * pipe open, then closed), so the code warmed is the code the caller's exec takes.
 * Stops at the first failure; returns the last ending.
 */
async function warmExecs(agent: GuestClient, n: number): Promise<GuestExit> {
  let end: GuestExit = { exitCode: 0, signal: null };
  for (let i = 0; i < n; i++) {
    const proc = agent.exec(["true"], { env: DEFAULT_ENV, cwd: "/workspace", stdin: true });
    proc.closeStdin();
    end = await proc.exited;
    if (end.exitCode !== 0) break;
  }
  return end;
}

async function defaultImage(name: string | undefined, onProgress?: (line: string) => void): Promise<BootImage> {
  const { bootImage } = await import("./image.js");
  return bootImage({ ...(name ? { name } : {}), ...(onProgress ? { onProgress } : {}) });
}
