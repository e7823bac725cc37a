/**
 * Network for micro-VM sandboxes: the egress firewall's namespace, bridged to
 * the VM.
 *
 * The firewall gives every networked sandbox a namespace `lg-<short>` whose veth
 * end `lgs<short>` holds the sandbox address (/30, default route via the host
 * side). For a VM that address moves into the guest: one `ip` batch inside the
 * namespace takes it (and the route) off the veth, makes a bridge `lgbr0`, and
 * enslaves the veth and the VM's tap `lgtap0` (owned by the jailed QEMU's uid)
 * to it. The guest's eth0 then gets exactly the sandbox address and gateway
 * (agent op `network`), so the host-side rules, the proxy and the counters see
 * the same source address as for a namespace sandbox, and nothing about the
 * policy changes.
 *
 * Where the tap comes from:
 * - Clones (and templates) start before any sandbox exists: each QEMU gets a
 *   tap in a namespace of its own (`lgvm-<owner>-<hex>`, "scratch": only lo
 *   and the tap, no address, no route). QEMU keeps its fd when the tap moves to
 *   another namespace, so a clone can be started ahead of time like one without
 *   network, and taking it moves the tap into the sandbox's namespace. The
 *   template's NIC is on such a tap too: its backend must be of the same kind
 *   as its clones' (the migration carries only the device's state; the tap's
 *   vnet header and offloads decide which features the guest negotiated).
 * - A cold-booted VM gets its tap made in the sandbox's namespace, and QEMU is
 *   started there (nsenter).
 * Either way QEMU sits in a namespace without addresses: it cannot open
 * connections of its own. Scratch namespaces of dead owners are swept before
 * the first new one.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { basename } from "node:path";
import { FirewallError } from "../../policy/firewall/errors.js";
import { NETNS_DIR } from "../../policy/firewall/names.js";
import { PREFIX } from "../../policy/firewall/netns.js";
import type { NetworkRules } from "../../policy/firewall/policy.js";
import { ownerAlive, ownOwnerName, parseOwnerName } from "../../policy/limits/index.js";
import { whichExecutable } from "../../probe.js";
import type { SandboxNetwork, SandboxNetworking } from "../network.js";
import { newSandboxId } from "../ids.js";
import { VM_UID } from "./vm-process.js";

/** Names inside a sandbox's namespace (each namespace has its own, so they are fixed). */
export const VM_TAP = "lgtap0";
export const VM_BRIDGE = "lgbr0";
/** Scratch namespaces of template VMs and waiting clones: `lgvm-<owner>-<8 hex>`; nothing of the firewall's starts so. */
const SCRATCH_PREFIX = "lgvm-";
const IP_TIMEOUT_MS = 10_000;
/** Without IPv6 in the kernel, `addrgenmode` fails; with it, `none` keeps link-local addresses (and their chatter) off our links. */
const HAS_IPV6 = existsSync("/proc/sys/net/ipv6");

/** Where a VM's NIC attaches: the tap QEMU opens, in the namespace QEMU enters. */
export interface VmTap {
  ifname: string;
  netnsPath: string;
}

/** What the guest's eth0 is given (agent op `network`). */
export interface GuestAddressing {
  address: string;
  prefixLength: number;
  gateway: string;
  resolvConf: string;
}

/** One networked micro-VM's network: the firewall's, plus the bridge and tap. */
export interface VmNetwork {
  /** The firewall's side (policy updates, rules, counters), as namespace sandboxes have it. */
  readonly sandbox: SandboxNetwork;
  readonly tap: VmTap;
  readonly guest: GuestAddressing;
  /** After QEMU is gone: remove tap and bridge, then the firewall's namespace, veth and rules. Idempotent; retry after E_FIREWALL_CLEANUP. */
  release(): Promise<void>;
}

/**
 * The `ip` batch (run inside the sandbox's namespace) that moves the sandbox
 * address from the veth to a bridge the VM's tap joins. `makeTap`: create the
 * tap here (cold boot); otherwise it was moved in already.
 */
export function bridgeBatch(sandboxIf: string, o: { makeTap: boolean; tapUid?: number }): string {
  const uid = o.tapUid ?? VM_UID;
  return lines([
    // The address and the default route through it go: the guest holds them from now on.
    "route flush table main",
    `address flush dev ${sandboxIf}`,
    `link add name ${VM_BRIDGE} type bridge`,
    ...(HAS_IPV6 ? [`link set dev ${VM_BRIDGE} addrgenmode none`] : []),
    // Persistent and owned by QEMU's uid: the jailed QEMU (no capabilities) may attach to it by name.
    ...(o.makeTap ? [`tuntap add dev ${VM_TAP} mode tap user ${uid} group ${uid}`] : []),
    ...(HAS_IPV6 ? [`link set dev ${VM_TAP} addrgenmode none`] : []),
    `link set dev ${sandboxIf} master ${VM_BRIDGE}`,
    `link set dev ${VM_TAP} master ${VM_BRIDGE}`,
    `link set dev ${VM_TAP} up`,
    // Without STP the ports forward as soon as they are up: no learning delay for the first packet.
    `link set dev ${VM_BRIDGE} up`,
  ]);
}

/** The batch that removes tap and bridge (the veth and namespace are the firewall's to remove). */
export function unbridgeBatch(): string {
  return lines([`link delete dev ${VM_TAP}`, `link delete dev ${VM_BRIDGE}`]);
}

/**
 * Attach the firewall's network for `sandboxId` and bridge it for a VM: move
 * the `parked` tap (a clone's, QEMU attached) into the sandbox's namespace, or
 * without one make the tap there. Fails closed: on any error the firewall's
 * part is released (E_FIREWALL_* from the firewall, or E_FIREWALL_NETNS when the
 * bridge cannot be made); a parked tap already moved goes with the namespace.
 */
export async function attachVmNetwork(networking: SandboxNetworking, sandboxId: string, policy: NetworkRules, parked?: VmTap): Promise<VmNetwork> {
  const sandbox = await networking.attach(sandboxId, policy);
  const a = sandbox.attachment;
  const netns = basename(a.netnsPath);
  try {
    if (parked) {
      const from = basename(parked.netnsPath);
      const moved = await runIp(["-n", from, "link", "set", "dev", parked.ifname, "netns", netns, ...(parked.ifname === VM_TAP ? [] : ["name", VM_TAP])]);
      if (moved.code !== 0) {
        throw new FirewallError("E_FIREWALL_NETNS", `Could not move the VM's tap ${parked.ifname} from ${from} into the network namespace ${netns} of sandbox ${sandboxId}: ${firstLine(moved.output) || "ip failed"}.`, { details: { output: moved.output } });
      }
    }
    const r = await runIp(["-n", netns, "-batch", "-"], bridgeBatch(a.sandboxInterface, { makeTap: parked === undefined }));
    if (r.code !== 0) {
      throw new FirewallError("E_FIREWALL_NETNS", `Could not bridge the network namespace ${netns} of sandbox ${sandboxId} to its VM: ${firstLine(r.output) || "ip failed"}. Check that the bridge and tun modules load (\`modprobe bridge tun\`).`, { details: { output: r.output } });
    }
  } catch (err) {
    await sandbox.release().catch(() => {});
    throw err;
  }
  return new BridgedNetwork(sandbox, { ifname: VM_TAP, netnsPath: a.netnsPath }, { address: a.sandboxAddress, prefixLength: PREFIX, gateway: a.hostAddress, resolvConf: sandbox.resolvConf() });
}

/**
 * The network of one sandbox being created: attached when its VM's id is known
 * (a clone's, while its state loads; a cold boot's, before QEMU starts), and
 * released if the create fails.
 */
export class PendingVmNetwork {
  net: VmNetwork | undefined;

  private constructor(
    private readonly networking: SandboxNetworking,
    private readonly policy: NetworkRules,
  ) {}

  /** Start the networking (privileges, tools, sweep, proxy: once per process) before anything is made for the sandbox. */
  static async start(networking: SandboxNetworking, policy: NetworkRules): Promise<PendingVmNetwork> {
    await networking.start();
    return new PendingVmNetwork(networking, policy);
  }

  /** For Template.clone: attach the network for the clone and move its parked tap in. */
  readonly forClone = async (vm: { id: string }, parked: VmTap): Promise<void> => {
    this.net = await attachVmNetwork(this.networking, vm.id, this.policy, parked);
  };

  /** For a cold boot: a network with a tap of its own, or the one a failed clone left (its tap persists; the new QEMU attaches to it). */
  async forColdBoot(): Promise<VmNetwork> {
    this.net ??= await attachVmNetwork(this.networking, newSandboxId(), this.policy);
    return this.net;
  }

  /** The create failed (its VM is gone): release what was attached. */
  async abandon(): Promise<void> {
    await this.net?.release().catch(() => {});
    this.net = undefined;
  }
}

class BridgedNetwork implements VmNetwork {
  private releasing: Promise<void> | undefined;

  constructor(
    readonly sandbox: SandboxNetwork,
    readonly tap: VmTap,
    readonly guest: GuestAddressing,
  ) {}

  release(): Promise<void> {
    this.releasing ??= (async () => {
      const netns = basename(this.tap.netnsPath);
      // Explicitly, while the namespace still has its name: left to the namespace's
      // teardown they would go too, but later and asynchronously.
      if (existsSync(this.tap.netnsPath)) await runIp(["-n", netns, "-force", "-batch", "-"], unbridgeBatch()).catch(() => undefined);
      await this.sandbox.release();
    })();
    this.releasing.catch(() => (this.releasing = undefined));
    return this.releasing;
  }
}

/** A tap in a namespace of its own, for a template VM or a waiting clone (no sandbox, no firewall). */
export interface ScratchTap extends VmTap {
  /** Remove the namespace and the tap in it (after the VM is gone). */
  remove(): Promise<void>;
}

let swept: Promise<void> | undefined;

/** A throwaway namespace with a tap owned by QEMU's uid and nothing else (no address, no route, no way out). */
export async function scratchTap(): Promise<ScratchTap> {
  swept ??= sweepStaleScratchTaps().then(
    () => undefined,
    () => undefined,
  );
  await swept;
  const netns = `${SCRATCH_PREFIX}${await ownOwnerName()}-${randomBytes(4).toString("hex")}`;
  const made = await runIp(["netns", "add", netns]);
  if (made.code !== 0) {
    throw new FirewallError("E_FIREWALL_NETNS", `Could not create the network namespace ${netns} for a micro-VM's tap: ${firstLine(made.output) || "ip failed"}. Networked micro-VMs need root and a writable ${NETNS_DIR}.`, { details: { output: made.output } });
  }
  const remove = async (): Promise<void> => {
    const r = await runIp(["netns", "delete", netns]);
    if (r.code !== 0 && existsSync(`${NETNS_DIR}/${netns}`)) {
      throw new FirewallError("E_FIREWALL_CLEANUP", `Could not remove the micro-VM scratch namespace ${netns}: ${firstLine(r.output)}. Remove it with \`ip netns delete ${netns}\`.`);
    }
  };
  const r = await runIp(["-n", netns, "-batch", "-"], lines([`tuntap add dev ${VM_TAP} mode tap user ${VM_UID} group ${VM_UID}`, ...(HAS_IPV6 ? [`link set dev ${VM_TAP} addrgenmode none`] : []), `link set dev ${VM_TAP} up`]));
  if (r.code !== 0) {
    await remove().catch(() => {});
    throw new FirewallError("E_FIREWALL_NETNS", `Could not create the tap for a micro-VM in ${netns}: ${firstLine(r.output) || "ip failed"}. Check that the tun module loads (\`modprobe tun\`).`, { details: { output: r.output } });
  }
  return { ifname: VM_TAP, netnsPath: `${NETNS_DIR}/${netns}`, remove };
}

/** Remove the scratch namespaces of LuminaGuard processes that no longer run. Returns their names. */
export async function sweepStaleScratchTaps(): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(NETNS_DIR).catch(() => [] as string[])) {
    const owner = new RegExp(`^${SCRATCH_PREFIX}(pid-[0-9]+-[0-9]+)-[0-9a-f]{8}$`).exec(name)?.[1];
    const parsed = owner === undefined ? undefined : parseOwnerName(owner);
    if (!parsed || (await ownerAlive(parsed))) continue;
    if ((await runIp(["netns", "delete", name])).code === 0) removed.push(name);
  }
  return removed;
}

let ipPath: Promise<string> | undefined;

/** Run `ip` with `args` (and `input` on stdin); never rejects for a non-zero exit. */
async function runIp(args: string[], input?: string): Promise<{ code: number; output: string }> {
  ipPath ??= whichExecutable("ip").then((p) => {
    if (!p) throw new FirewallError("E_FIREWALL_NETNS", "ip (iproute2) is not installed, so micro-VM networks cannot be made. Install it: `apt-get install iproute2`.");
    return p;
  });
  const ip = await ipPath;
  return new Promise((resolve) => {
    const child = execFile(ip, args, { timeout: IP_TIMEOUT_MS }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, output: `${stderr}${stdout}`.trim() || (err?.message ?? "") });
    });
    child.stdin?.on("error", () => {});
    child.stdin?.end(input ?? "");
  });
}

function lines(cmds: string[]): string {
  return cmds.map((c) => `${c}\n`).join("");
}

function firstLine(s: string): string {
  return s.trim().split("\n")[0] ?? "";
}
