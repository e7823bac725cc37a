/**
 * Host checks for the egress firewall: nftables (rules), iproute2 (veth and
 * network namespaces) and whether network namespaces can really be made.
 * The firewall is a later feature, so a missing piece is a warning, not a failure:
 * sandboxes with network "none" need none of it.
 */
import { randomBytes } from "node:crypto";
import { describeFailure, isRoot, parseVersion, runCommand, whichExecutable, type Probe, type ProbeOutcome } from "../../probe.js";

/** Every namespace this probe creates starts with this, so a leftover is easy to spot and remove. */
export const NETNS_PROBE_PREFIX = "lgprobe-";

const NOT_ROOT_FIX = "Run LuminaGuard as root (the firewall needs CAP_NET_ADMIN to create network namespaces and nftables rules).";

const nftProbe: Probe = {
  id: "firewall.nft",
  title: "nftables",
  onError: "warn",
  async run(signal) {
    const nft = await whichExecutable("nft");
    if (!nft) return { status: "warn", detail: "nft is not installed: the egress firewall cannot be used", fix: "sudo apt-get install nftables" };
    const ver = await runCommand(nft, ["--version"], { signal });
    const version = parseVersion(ver.stdout) ?? "unknown version";
    if (!isRoot()) return { status: "warn", detail: `nftables ${version} at ${nft}; not root, so rules cannot be managed`, fix: NOT_ROOT_FIX };
    // Listing tables needs the netlink socket with CAP_NET_ADMIN: the same right adding rules needs.
    const list = await runCommand(nft, ["list", "tables"], { signal });
    if (!list.ok) {
      return { status: "warn", detail: `nftables ${version}, but \`nft list tables\` failed: ${describeFailure(list)}`, fix: "Give LuminaGuard CAP_NET_ADMIN (inside a container: --cap-add NET_ADMIN) and make sure the nf_tables kernel module can load." };
    }
    return { status: "ok", detail: `nftables ${version} at ${nft}; rules can be listed (CAP_NET_ADMIN)` };
  },
};

const ipProbe: Probe = {
  id: "firewall.ip",
  title: "iproute2 (ip)",
  onError: "warn",
  async run(signal) {
    const ip = await whichExecutable("ip");
    if (!ip) return { status: "warn", detail: "ip is not installed: network namespaces and veth pairs cannot be set up", fix: "sudo apt-get install iproute2" };
    const ver = await runCommand(ip, ["-V"], { signal });
    // "ip utility, iproute2-6.1.0, libbpf 1.1.2": the iproute2 version is the one that matters.
    const version = /iproute2-(?:ss)?([\d.]+)/.exec(ver.stdout)?.[1] ?? parseVersion(ver.stdout);
    return { status: "ok", detail: `iproute2 ${version ?? "(unknown version)"} at ${ip}` };
  },
};

/** Create a throwaway network namespace and delete it again; the delete runs whatever happened. */
export async function tryNetworkNamespace(ip: string, signal?: AbortSignal): Promise<ProbeOutcome> {
  const name = NETNS_PROBE_PREFIX + randomBytes(4).toString("hex");
  try {
    const add = await runCommand(ip, ["netns", "add", name], signal ? { signal } : {});
    if (!add.ok) {
      return { status: "warn", detail: `\`ip netns add\` failed: ${describeFailure(add)}`, fix: "Network namespaces need CAP_SYS_ADMIN and a writable /run/netns; inside a container, run it privileged or with --cap-add SYS_ADMIN,NET_ADMIN." };
    }
    return { status: "ok", detail: "a network namespace was created and removed" };
  } finally {
    // Not tied to `signal`: even when the time box gave up on us, the namespace must not stay behind.
    // Deleting a name that was never (fully) created fails harmlessly.
    await runCommand(ip, ["netns", "delete", name], { timeoutMs: 3_000 });
  }
}

const netnsProbe: Probe = {
  id: "firewall.netns",
  title: "network namespaces",
  onError: "warn",
  async run(signal) {
    if (!isRoot()) return { status: "warn", detail: "not root: cannot create network namespaces to check", fix: NOT_ROOT_FIX };
    const ip = await whichExecutable("ip");
    if (!ip) return { status: "warn", detail: "ip is not installed, so network namespaces cannot be checked", fix: "sudo apt-get install iproute2" };
    return tryNetworkNamespace(ip, signal);
  },
};

/** The firewall checks, in display order. */
export function firewallProbes(): Probe[] {
  return [nftProbe, ipProbe, netnsProbe];
}
