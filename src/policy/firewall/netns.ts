/**
 * A sandbox's network namespace and veth pair, made with two `ip` batches:
 * one in the host's namespace (create the namespace, the veth with its far end
 * already inside, the host address, link up) and one inside it (lo up, the
 * sandbox address, link up, default route through the host side). The first
 * goes to the long-lived `ip` session; the second needs a process inside the
 * new namespace, so it is the one process an attach starts. Addresses cannot
 * be set before the far end moves in: moving a link flushes its addresses.
 *
 * Removal deletes the host-side veth explicitly (the kernel removes both ends at
 * once, synchronously) before the namespace name: deleting only the namespace
 * leaves the veth to the kernel's asynchronous namespace cleanup, and it would
 * linger in the host's namespace for a while.
 */
import { existsSync } from "node:fs";
import type { Subnet } from "./addressing.js";
import type { SandboxNames } from "./names.js";
import type { Step } from "./runner.js";

/** Every sandbox subnet is a /30: host side and sandbox side. */
export const PREFIX = 30;
/** Without IPv6 in the kernel, `addrgenmode` fails; with it, `none` keeps link-local addresses (and their chatter) off our veths. */
const HAS_IPV6 = existsSync("/proc/sys/net/ipv6");

/** The two `ip` batches that create and configure a sandbox's namespace: one for the host's namespace, one run inside the new one. */
export function createBatches(n: SandboxNames, s: Subnet, opts: { adoptPid?: number | undefined } = {}): { root: string; inside: string } {
  const root = [
    // A spare's namespace already exists (the spare process made it): name it instead of making one.
    opts.adoptPid === undefined ? `netns add ${n.netns}` : `netns attach ${n.netns} ${opts.adoptPid}`,
    `link add ${n.hostIf} type veth peer name ${n.sandboxIf} netns ${n.netns}`,
    ...(HAS_IPV6 ? [`link set dev ${n.hostIf} addrgenmode none`] : []),
    `address add ${s.hostAddress}/${PREFIX} dev ${n.hostIf}`,
    `link set dev ${n.hostIf} up`,
  ];
  const inside = [
    `link set dev lo up`,
    ...(HAS_IPV6 ? [`link set dev ${n.sandboxIf} addrgenmode none`] : []),
    `address add ${s.sandboxAddress}/${PREFIX} dev ${n.sandboxIf}`,
    `link set dev ${n.sandboxIf} up`,
    `route add default via ${s.hostAddress} dev ${n.sandboxIf} onlink`,
  ];
  return { root: batch(root), inside: batch(inside) };
}

/** The inside batch as a command: `ip -n <netns>` enters the namespace. */
export function insideStep(ip: string, n: SandboxNames, inside: string): Step {
  return { argv: [ip, "-n", n.netns, "-batch", "-"], input: inside };
}

/** The `ip` batch that removes what exists of a sandbox's veth and namespace; undefined when nothing is left. */
export function destroySteps(ip: string, n: SandboxNames, exists: { link: boolean; netns: boolean } = currentObjects(n)): Step[] | undefined {
  const cmds = [...(exists.link ? [`link delete dev ${n.hostIf}`] : []), ...(exists.netns ? [`netns delete ${n.netns}`] : [])];
  return cmds.length === 0 ? undefined : [{ argv: [ip, "-batch", "-"], input: batch(cmds) }];
}

/** Which of a sandbox's host-visible objects exist now. */
export function currentObjects(n: SandboxNames): { link: boolean; netns: boolean } {
  return { link: existsSync(`/sys/class/net/${n.hostIf}`), netns: existsSync(n.netnsPath) };
}

function batch(cmds: string[]): string {
  return cmds.map((c) => `${c}\n`).join("");
}
