/**
 * One QEMU process, started hardened and owned until kill(): a private folder
 * for its sockets, a cgroup bounding its memory, processes and CPU, the jail of
 * jail-args.ts (own namespaces, read-only view, unprivileged uid, our seccomp
 * program under QEMU's own `-sandbox`), nothing inherited but /dev/null and a
 * stderr pipe, and a connected QMP client.
 *
 * Launcher chain (each step execs the next, so the pid we spawn is bwrap's):
 *   sh (enters the cgroup) → bash (closes leaked fds) → [nsenter --net=<netns>]
 *   → bwrap → [setpriv] → qemu
 *
 * Leftovers of a crashed LuminaGuard (folders, /dev/shm files, cgroups) carry
 * the owner's pid and start time in their names; sweepStaleVms() removes those
 * of dead owners and nothing else.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import { setPriority } from "node:os";
import { chown, mkdir, readdir, rm, unlink } from "node:fs/promises";
import { connect as netConnect, type Socket } from "node:net";
import { join } from "node:path";
import { runtimeDir } from "../../config/paths.js";
import type { SeccompLevel } from "../../policy/seccomp/index.js";
import { createSandboxCgroup, enterCgroupArgv, ownerAlive, ownOwnerName, parseOwnerName, sweepStaleCgroups, type SandboxCgroup } from "../../policy/limits/index.js";
import { SandboxError } from "../errors.js";
import { descendantPids, killQuietly } from "../proc-tree.js";
import { signalFromExitCode } from "../signals.js";
import { ownScratchDir, sweepStaleScratch } from "../namespace/scratch.js";
import { KVM_DEVICE } from "./probe.js";
import { qemuArgs, tcgKernelParams, type Accel, type QemuInput, type RamBacking } from "./qemu-args.js";
import { jailArgs } from "./jail-args.js";
import { detectAccel, deviceNodeFor, findQemuBinary, findTool, hostTscKhz, qemuView, seccompProgram, TUN_DEVICE } from "./vm-host.js";
import { QmpClient } from "./qmp.js";

export { detectAccel, findQemuBinary, hostTscKhz };

/** The unprivileged uid QEMU runs as when we are root (as the namespace backend's sandboxes). */
export const VM_UID = 65534;

/**
 * TCG translation cache. QEMU's default is 1 GiB (bounded by host RAM / 8), all
 * of which a busy guest may fill and the VM's cgroup would then have to hold.
 * Measured with node running in a guest (3 runs of a small script): 128 MiB ran
 * without a cache flush (~132 MB of code); 64 MiB flushed 5 times and 32 MiB 16
 * times, each run 2-3x slower. So 128 MiB: a bound, at no cost for such work.
 */
export const DEFAULT_TB_SIZE_MIB = 128;
/** QEMU's own memory besides guest RAM (the TCG cache above, ~40 MiB of QEMU, device buffers), for the cgroup limit. */
export const QEMU_OVERHEAD_BYTES = 256 * 1024 * 1024;
/** Threads of one QEMU: main, RCU, vCPUs, I/O workers (up to 64), plus bwrap. */
export const DEFAULT_VM_PIDS = 128;

export interface StartVmOptions {
  /** Folder, cgroup and QEMU name; default `vm-<12 hex>`. */
  id?: string;
  cpus?: number;
  memoryMiB: number;
  /** Default anonymous memory. */
  ram?: RamBacking;
  /** Direct kernel boot; under TCG the host TSC rate is appended to the cmdline (see tcgKernelParams). */
  kernel?: { path: string; initrd?: string; cmdline: string };
  rootImage?: string;
  /** Create the guest agent's virtio-serial channel (default true). */
  agent?: boolean;
  /** Give the VM a serial console (ttyS0) whose output consoleLog() returns (default true). */
  console?: boolean;
  /** A tap interface (owned by the VM's uid) in `netnsPath` (entered with nsenter; root only). */
  network?: { ifname: string; mac?: string; netnsPath?: string };
  /** `-incoming defer`: a clone waiting for migrate-incoming. */
  incoming?: boolean;
  /** `-S`: vCPUs stopped until QMP `cont`. */
  paused?: boolean;
  /** Default: KVM when probe.ts judges hardware KVM usable, else TCG. */
  accel?: Accel;
  tcg?: { thread?: "single" | "multi"; tbSizeMiB?: number };
  /** The host TSC rate for tcgKernelParams; default from /proc/cpuinfo. */
  hostTscKhz?: number;
  /**
   * false: run QEMU directly as the caller, without namespaces, uid change or our
   * seccomp program (to measure what the jail costs, or to debug). Default true.
   */
  jail?: boolean;
  /** Our seccomp program around QEMU (inside the jail); "off" to leave only QEMU's own. Default "permissive". */
  seccomp?: SeccompLevel | "off";
  /** cgroup limits; default guest RAM + QEMU_OVERHEAD_BYTES, DEFAULT_VM_PIDS, one core per vCPU. false: none. */
  limits?: { memoryBytes?: number; pids?: number; cpus?: number } | false;
  /**
   * Start QEMU with this nice value (0-19). The backend prepares clones at a low
   * priority and raises a clone to normal once it is handed out (setVmPriority),
   * so on a small host refilling the pool does not slow the sandboxes in use.
   */
  nice?: number;
  /** Budget from spawn to a negotiated QMP connection (default 10 s). */
  startTimeoutMs?: number;
  /** Default qemu-system-x86_64 from the usual system folders. */
  qemuBinary?: string;
}

export interface VmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface VmProcess {
  readonly id: string;
  /** QEMU's host pid. */
  readonly pid: number;
  /** The VM's private folder (sockets); removed by kill(). */
  readonly dir: string;
  /** Connected, capabilities negotiated. */
  readonly qmp: QmpClient;
  /** Where the host connects to the guest agent (QEMU listens); exists only with `agent`. */
  readonly agentSocketPath: string;
  readonly accel: Accel;
  /** The QEMU configuration, for a clone that must match this VM's devices. */
  readonly config: QemuInput;
  readonly cgroup: SandboxCgroup | undefined;
  /** Spawn to QMP ready, and the whole start including folder and cgroup. */
  readonly timings: { qmpReadyMs: number; totalMs: number };
  /** The last 64 KiB the guest wrote to its serial console (kept after QEMU exits). */
  consoleLog(): string;
  /** The last 16 KiB QEMU wrote to stderr. */
  stderrTail(): string;
  /** Resolves when QEMU has exited, for whatever reason. */
  readonly exited: Promise<VmExit>;
  /** True once QEMU has exited. */
  readonly hasExited: boolean;
  /** SIGKILL QEMU, wait for it, remove its folder and cgroup. Idempotent. */
  kill(): Promise<void>;
}

const CONSOLE_KEEP = 64 * 1024;
const STDERR_KEEP = 16 * 1024;
const KILL_WAIT_MS = 5_000;
const EXIT_GRACE_MS = 200;
/** sun_path is 108 bytes including the NUL. */
const MAX_SOCKET_PATH = 107;

/**
 * Close every fd from $1 on, then exec the rest. bash, because dash cannot name
 * fds above 9. (No redirection on the loop: bash would park stderr on a high fd
 * that the loop then closes.)
 */
export const CLOSE_FDS_SCRIPT = 'keep=$1; shift; for f in /proc/self/fd/*; do n=${f##*/}; if ((n >= keep)); then eval "exec $n>&-"; fi; done; exec "$@"';

/** Start one QEMU and connect QMP. Rejects with E_VM_START (with QEMU's stderr) when it does not come up. */
export async function startVm(opts: StartVmOptions): Promise<VmProcess> {
  const started = performance.now();
  const id = opts.id ?? `vm-${randomBytes(6).toString("hex")}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) {
    throw new SandboxError("E_VM_START", `Invalid VM id ${JSON.stringify(id)}: use 1-64 letters, digits, '.', '_' or '-'.`);
  }
  const binary = opts.qemuBinary ?? findQemuBinary();
  const accel = opts.accel ?? (await detectAccel());
  const jailed = opts.jail ?? true;
  const asRoot = process.getuid?.() === 0;
  const uid = jailed && asRoot ? VM_UID : process.getuid!();
  const gid = jailed && asRoot ? VM_UID : process.getgid!();
  const cpus = opts.cpus ?? 1;

  const dir = join(await ownScratchDir(join(runtimeDir(), "vms")), id);
  const qmpSocket = join(dir, "qmp.sock");
  const agentSocket = join(dir, "agent.sock");
  const consoleSocket = join(dir, "console.sock");
  if (Buffer.byteLength(agentSocket) > MAX_SOCKET_PATH) {
    throw new SandboxError("E_VM_START", `The VM folder ${dir} is too deep for Unix socket paths (at most ${MAX_SOCKET_PATH} bytes). Point LUMINAGUARD_RUNTIME_DIR at a shorter folder.`);
  }
  if (opts.network?.netnsPath !== undefined && !asRoot) {
    throw new SandboxError("E_VM_START", "Entering a network namespace for the VM's tap needs root; run LuminaGuard as root or start the VM without network.");
  }

  const kernel = opts.kernel && accel === "tcg" && !opts.kernel.cmdline.includes("tsc_early_khz=")
    ? { ...opts.kernel, cmdline: [opts.kernel.cmdline, ...tcgKernelParams(opts.hostTscKhz ?? hostTscKhz())].join(" ").trim() }
    : opts.kernel;
  const config: QemuInput = {
    binary,
    name: id,
    accel,
    tcg: accel === "tcg" ? { tbSizeMiB: DEFAULT_TB_SIZE_MIB, ...opts.tcg } : undefined,
    cpus,
    memoryMiB: opts.memoryMiB,
    ram: opts.ram ?? { kind: "anonymous" },
    kernel,
    rootImage: opts.rootImage,
    agentSocket: opts.agent === false ? undefined : agentSocket,
    consoleSocket: opts.console === false ? undefined : consoleSocket,
    network: opts.network ? { ifname: opts.network.ifname, ...(opts.network.mac ? { mac: opts.network.mac } : {}) } : undefined,
    qmpSocket,
    incoming: opts.incoming,
    paused: opts.paused,
  };
  const qemuArgv = [binary, ...qemuArgs(config)]; // validates before anything is created

  await mkdir(dir, { mode: 0o700 });
  const wanted = [...(accel === "kvm" ? [KVM_DEVICE] : []), ...(opts.network ? [TUN_DEVICE] : [])];
  const devices: (string | [string, string])[] = [];
  let cgroup: SandboxCgroup | undefined;
  let seccompFd: number | undefined;
  try {
    if (uid !== process.getuid!()) await chown(dir, uid, gid);
    if (opts.limits !== false) {
      const l = opts.limits ?? {};
      cgroup = await createSandboxCgroup(id, {
        memoryBytes: l.memoryBytes ?? opts.memoryMiB * 1024 * 1024 + QEMU_OVERHEAD_BYTES,
        pids: l.pids ?? DEFAULT_VM_PIDS,
        cpus: l.cpus ?? cpus,
      });
    }
    if (jailed && asRoot) {
      for (const dev of wanted) devices.push([await deviceNodeFor(dev, dir, uid, gid), dev]);
    } else {
      devices.push(...wanted);
    }
    const level = opts.seccomp ?? "permissive";
    if (jailed && level !== "off") seccompFd = openSync(seccompProgram(level), "r");
  } catch (err) {
    await cgroup?.destroy().catch(() => {});
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  let launcher = qemuArgv;
  if (jailed) {
    // A clone's RAM file is bound read-write unless this QEMU can open it read-only (see RamBacking).
    const ramRo = config.ram.kind === "private-file" && config.ram.readOnlyOpen === true;
    const ram = config.ram.kind === "anonymous" ? [] : [config.ram.path];
    const readOnly = [kernel?.path, kernel?.initrd, opts.rootImage, ...(ramRo ? ram : [])].filter((p): p is string => p !== undefined);
    launcher = [
      findTool("bwrap"),
      ...jailArgs({
        mode: asRoot ? "root" : "user",
        uid,
        gid,
        hostname: id,
        view: qemuView(),
        readOnly,
        readWrite: [dir, ...(ramRo ? [] : ram)],
        devices,
        unshareNet: opts.network === undefined,
        seccompFd: seccompFd === undefined ? undefined : 3,
        argv: qemuArgv,
      }),
    ];
  }
  if (opts.network?.netnsPath !== undefined) launcher = [findTool("nsenter"), `--net=${opts.network.netnsPath}`, "--", ...launcher];
  if (opts.nice !== undefined && opts.nice > 0) launcher = [findTool("nice"), "-n", String(Math.min(19, Math.round(opts.nice))), ...launcher];
  // fds our own parent leaked to us without close-on-exec would pass through bwrap to QEMU.
  if (jailed) launcher = [findTool("bash"), "-c", CLOSE_FDS_SCRIPT, "luminaguard-close-fds", String(seccompFd === undefined ? 3 : 4), ...launcher];
  const argv = cgroup ? enterCgroupArgv(cgroup.procsFiles, launcher) : launcher;

  const spawnedAt = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ["ignore", "ignore", "pipe", ...(seccompFd === undefined ? [] : [seccompFd])],
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
    // Our own session: a terminal's Ctrl-C reaches us, never the VM.
    detached: true,
  });
  if (seccompFd !== undefined) closeSync(seccompFd);
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (s: string) => {
    stderr = (stderr + s).slice(-STDERR_KEEP);
  });
  let hasExited = false;
  const exited = new Promise<VmExit>((resolve) => {
    child.once("error", (err) => {
      stderr += `\n${err.message}`;
      hasExited = true;
      resolve({ code: null, signal: null });
    });
    child.once("close", (code, signal) => {
      hasExited = true;
      // bwrap reports its child's death by signal N as exit code 128+N.
      const fromCode = jailed ? signalFromExitCode(code) : null;
      resolve({ code: fromCode ? null : code, signal: fromCode ?? signal });
    });
  });

  const gone = new AbortController();
  void exited.then(() => gone.abort());
  let qmp: QmpClient;
  let pid: number;
  try {
    qmp = await QmpClient.connect(qmpSocket, { waitForSocket: true, timeoutMs: opts.startTimeoutMs ?? 10_000, signal: gone.signal });
    pid = jailed ? findQemuPid(child.pid!) : child.pid!;
    if (pid === 0) throw new SandboxError("E_VM_START", "QEMU answered QMP but its process could not be found under bwrap.");
  } catch (err) {
    // A QEMU that refused its arguments closes the socket a moment before it exits: give it that moment.
    const ownExit = await Promise.race([exited, sleep(EXIT_GRACE_MS).then(() => undefined)]);
    if (child.pid !== undefined && !ownExit) {
      for (const p of descendantPids(child.pid)) killQuietly(p, "SIGKILL");
      killQuietly(child.pid, "SIGKILL");
    }
    await cgroup?.killAll().catch(() => {});
    const end = await Promise.race([exited, sleep(KILL_WAIT_MS).then(() => undefined)]);
    await cgroup?.destroy().catch(() => {});
    await rm(dir, { recursive: true, force: true }).catch(() => {});
    const why = ownExit ? `QEMU exited (${describeExit(ownExit)})` : `QEMU's QMP monitor did not answer (${(err as Error).message})`;
    throw new SandboxError("E_VM_START", `The micro-VM ${id} did not start: ${why}. QEMU said: ${stderr.trim().slice(-2000) || "nothing"}. Run \`luminaguard doctor\` to check QEMU and KVM.`, {
      cause: err,
      details: { stderr: stderr.slice(-4000), exit: end, argv },
    });
  }
  const qmpReadyMs = performance.now() - spawnedAt;

  let consoleText = "";
  let consoleConn: Socket | undefined;
  if (config.consoleSocket !== undefined) {
    consoleConn = await connectQuietly(config.consoleSocket);
    consoleConn?.setEncoding("utf8");
    consoleConn?.on("data", (s: string) => {
      consoleText = (consoleText + s).slice(-CONSOLE_KEEP);
    });
  }

  let killing: Promise<void> | undefined;
  const teardown = async (): Promise<void> => {
    if (!hasExited) {
      // QEMU first: bwrap's init then exits with its status, and the namespace is empty.
      killQuietly(pid, "SIGKILL");
      await cgroup?.killAll().catch(() => {});
    }
    const end = await Promise.race([exited.then(() => true), sleep(KILL_WAIT_MS).then(() => false)]);
    if (!end && child.pid !== undefined) killQuietly(child.pid, "SIGKILL");
    qmp.close();
    consoleConn?.destroy();
    const errors: unknown[] = [];
    await cgroup?.destroy().catch((e: unknown) => errors.push(e));
    await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw errors[0];
  };
  return {
    id,
    pid,
    dir,
    qmp,
    agentSocketPath: agentSocket,
    accel,
    config,
    cgroup,
    timings: { qmpReadyMs, totalMs: performance.now() - started },
    consoleLog: () => consoleText,
    stderrTail: () => stderr,
    exited,
    get hasExited() {
      return hasExited;
    },
    kill: () => {
      killing ??= teardown().catch((err: unknown) => {
        killing = undefined; // let a later kill() retry the cleanup
        throw err;
      });
      return killing;
    },
  };
}

/**
 * Set the nice value of every thread of QEMU `pid` (nice is per thread on Linux,
 * and the vCPU threads are what runs the guest). Lowering it needs root; a
 * failure leaves the VM slower but working, so it is not an error.
 */
export function setVmPriority(pid: number, nice: number): void {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return; // gone
  }
  for (const tid of tids) {
    try {
      setPriority(Number(tid), nice);
    } catch {
      // thread gone, or not permitted
    }
  }
}

/** QEMU under bwrap (bwrap → its init → QEMU), or 0. */
function findQemuPid(launcherPid: number): number {
  for (const pid of descendantPids(launcherPid)) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("qemu-system")) return pid;
    } catch {
      // gone meanwhile
    }
  }
  return 0;
}

function describeExit(end: VmExit): string {
  return end.signal ? `killed by ${end.signal}` : `exit code ${end.code}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** Connect to a socket QEMU listens on; undefined when it cannot (the console is optional). */
function connectQuietly(path: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const s = netConnect({ path });
    s.once("connect", () => {
      s.removeAllListeners("error");
      s.on("error", () => {});
      resolve(s);
    });
    s.once("error", () => resolve(undefined));
  });
}

const SHM_DIR = "/dev/shm";
const SHM_PREFIX = "luminaguard-vm-";

/** A /dev/shm path named for this process (so the sweep can tell a dead owner's files). */
export async function ownedShmPath(name: string): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$/.test(name)) {
    throw new SandboxError("E_VM_SNAPSHOT", `Invalid shared-memory file name ${JSON.stringify(name)}: use letters, digits, '.', '_' or '-'.`);
  }
  return join(SHM_DIR, `${SHM_PREFIX}${await ownOwnerName()}-${name}`);
}

/**
 * Remove what micro-VMs of dead LuminaGuard processes left: VM folders, template
 * files in /dev/shm, and their cgroups (with any QEMU still in them). Owners
 * that still run, this process included, are never touched.
 */
export async function sweepStaleVms(): Promise<string[]> {
  // Cgroups first: that kills a dead owner's QEMU before its folder goes.
  const removed = await sweepStaleCgroups();
  removed.push(...(await sweepStaleScratch(join(runtimeDir(), "vms"))));
  for (const name of await readdir(SHM_DIR).catch(() => [] as string[])) {
    if (!name.startsWith(SHM_PREFIX)) continue;
    const owner = /^(pid-[0-9]+-[0-9]+)-/.exec(name.slice(SHM_PREFIX.length))?.[1];
    const parsed = owner === undefined ? undefined : parseOwnerName(owner);
    if (!parsed || (await ownerAlive(parsed))) continue;
    const path = join(SHM_DIR, name);
    await unlink(path).catch(() => {});
    removed.push(path);
  }
  return removed;
}
