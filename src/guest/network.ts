/**
 * The guest's side of a networked micro-VM: give its one NIC the sandbox's
 * address, a default route through the host side of the sandbox's /30, and the
 * policy's resolv.conf. The host bridges the VM's tap with the firewall's veth,
 * so with this address the guest's packets carry exactly the source address the
 * host's rules, proxy and counters expect of that sandbox.
 *
 * One `sh` runs every `ip` step (busybox: no iproute2 in the image), because a
 * process start costs tens of milliseconds under TCG. IPv6 is switched off on
 * the NIC: the firewall speaks IPv4 only, and the host veths carry no IPv6
 * either (addrgenmode none), so the guest's link-local chatter would only be
 * dropped.
 */
import { execFile } from "node:child_process";
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
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

/** Flush, up, address, default route; the arguments are validated by the protocol (dotted quads, a prefix length). */
const SCRIPT = [
  'dev=$1; addr=$2; gw=$3; ip=$4',
  'v6=/proc/sys/net/ipv6/conf/$dev/disable_ipv6',
  'if [ -e "$v6" ]; then echo 1 >"$v6" || exit 10; fi',
  '"$ip" addr flush dev "$dev" || exit 11',
  '"$ip" link set dev "$dev" up || exit 12',
  '"$ip" addr add "$addr" dev "$dev" || exit 13',
  '"$ip" route add default via "$gw" dev "$dev" || exit 14',
].join("\n");

/** The script's exit codes: which step failed. */
const STEP: Record<number, string> = { 10: "disable IPv6 on", 11: "flush the addresses of", 12: "bring up", 13: "set the address of", 14: "set the default route of" };

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
  await new Promise<void>((resolve, reject) => {
    execFile("/bin/sh", ["-c", SCRIPT, "luminaguard-network", dev, `${s.address}/${s.prefixLength}`, s.gateway, ip], { timeout: HELPER_TIMEOUT_MS, env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const code = typeof err.code === "number" ? err.code : -1;
      const step = STEP[code] ?? "configure";
      reject(new AgentError("E_SANDBOX_START", `Could not ${step} the guest's ${dev} (${s.address}/${s.prefixLength} via ${s.gateway}): ${String(stderr).trim() || err.message}`));
    });
  });
  const path = o.resolvConfPath ?? "/etc/resolv.conf";
  try {
    // Renamed over the old one: a command starting meanwhile binds either the old file or the new one, never half of it.
    const tmp = join(dirname(path), `.resolv.conf.${process.pid}.tmp`);
    writeFileSync(tmp, s.resolvConf, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    throw new AgentError("E_SANDBOX_START", `Could not write the guest's ${path}: ${(err as Error).message}`);
  }
}
