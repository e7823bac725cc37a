/**
 * The guest's side of a networked micro-VM: give its one NIC the sandbox's
 * address, a default route through the host side of the sandbox's /30, and the
 * policy's resolv.conf. The host bridges the VM's tap with the firewall's veth,
 * so with this address the guest's packets carry exactly the source address the
 * host's rules, proxy and counters expect of that sandbox.
 *
 * One `sh` runs the `ip` steps (busybox: no iproute2 in the image), and what
 * Node can do itself it does (the sysctl, the check for an old address, the
 * file): every process start costs tens of milliseconds under TCG. IPv6 is
 * switched off on the NIC: the firewall speaks IPv4 only, and the host veths
 * carry no IPv6 either (addrgenmode none), so the guest's link-local chatter
 * would only be dropped.
 */
import { execFile } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { AgentError } from "./errors.js";
import { findProgram } from "./confine.js";

export interface NetworkSettings {
  address: string;
  prefixLength: number;
  gateway: string;
  resolvConf: string;
}

export interface GuestNetOptions {
  /** The NIC to configure ("eth0" in a micro-VM); undefined: this agent does not run in a VM and must not touch its host's network. */
  device: string | undefined;
  /** Where resolv.conf goes (default /etc/resolv.conf; bwrap binds it into every command). */
  resolvConfPath?: string;
}

/**
 * [Flush,] up, address, default route. The arguments are validated by the
 * protocol (dotted quads, a prefix length). Removing a device's last address
 * removes its routes too, so a repeated call starts clean.
 */
const SCRIPT = [
  'dev=$1; addr=$2; gw=$3; ip=$4; flush=$5',
  'if [ "$flush" = 1 ]; then "$ip" addr flush dev "$dev" || exit 11; fi',
  '"$ip" link set dev "$dev" up || exit 12',
  '"$ip" addr add "$addr" dev "$dev" || exit 13',
  '"$ip" route add default via "$gw" dev "$dev" || exit 14',
].join("\n");

/** The script's exit codes: which step failed. */
const STEP: Record<number, string> = { 11: "flush the addresses of", 12: "bring up", 13: "set the address of", 14: "set the default route of" };

const HELPER_TIMEOUT_MS = 20_000;

/** Configure the guest's NIC and resolv.conf. Throws AgentError (E_SANDBOX_START) with what failed. */
export async function configureNetwork(o: GuestNetOptions, s: NetworkSettings): Promise<void> {
  const dev = o.device;
  if (dev === undefined) {
    throw new AgentError("E_SANDBOX_START", "This guest agent does not run in a micro-VM, so it has no network device of its own to configure; networked sandboxes need the micro-VM backend.");
  }
  if (!existsSync(`/sys/class/net/${dev}`)) {
    throw new AgentError("E_SANDBOX_START", `The VM has no network device ${dev}: it was started without a NIC (a template without network?), or virtio_net did not load (check the VM's console). Start networked sandboxes from a template made with network.`);
  }
  const ip = findProgram("ip");
  const v6 = `/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`;
  try {
    if (existsSync(v6)) writeFileSync(v6, "1");
  } catch (err) {
    throw new AgentError("E_SANDBOX_START", `Could not disable IPv6 on the guest's ${dev}: ${(err as Error).message}`);
  }
  // A clone's eth0 has no address yet (the template never had one): flush only for a repeated call.
  const flush = (networkInterfaces()[dev] ?? []).some((a) => a.family === "IPv4");
  await new Promise<void>((resolve, reject) => {
    execFile("/bin/sh", ["-c", SCRIPT, "luminaguard-network", dev, `${s.address}/${s.prefixLength}`, s.gateway, ip, flush ? "1" : "0"], { timeout: HELPER_TIMEOUT_MS, env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const code = typeof err.code === "number" ? err.code : -1;
      const step = STEP[code] ?? "configure";
      reject(new AgentError("E_SANDBOX_START", `Could not ${step} the guest's ${dev} (${s.address}/${s.prefixLength} via ${s.gateway}): ${String(stderr).trim() || err.message}`));
    });
  });
  const path = o.resolvConfPath ?? "/etc/resolv.conf";
  try {
    // In place, not renamed over: bwrap binds the file's inode into each command's
    // view (and a long-lived launcher keeps its view), so only the same inode is seen everywhere.
    writeFileSync(path, s.resolvConf, { mode: 0o644 });
  } catch (err) {
    throw new AgentError("E_SANDBOX_START", `Could not write the guest's ${path}: ${(err as Error).message}`);
  }
}
