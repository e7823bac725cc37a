/**
 * IPv4 forwarding, which sandbox egress needs: a sandbox's packets arrive on
 * its veth and must be routed on to the world.
 *
 * `net.ipv4.ip_forward` is host-wide. We turn it on when the first networked
 * sandbox appears, record the previous value in the state file, and put it back
 * when the last one is gone (release, or sweep after a crash). While it is on,
 * the host routes between *all* its interfaces; our nft base chains only filter
 * `lgh*` traffic, so a host with several networks that must not be bridged needs
 * its own forward policy (most already have one).
 *
 * Writing ip_forward also rewrites `conf/all/accept_redirects` (the kernel sets
 * it to the opposite of forwarding), so that is saved and restored too. IPv6
 * forwarding is never touched: sandboxes get no IPv6, and turning it on would
 * make the host ignore router advertisements on its real interfaces.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { FirewallError } from "./errors.js";
import { HOST_IF_PREFIX } from "./names.js";
import type { SavedForwarding } from "./state.js";

const IP_FORWARD = "/proc/sys/net/ipv4/ip_forward";
const ACCEPT_REDIRECTS = "/proc/sys/net/ipv4/conf/all/accept_redirects";

/**
 * The host-wide record of the settings before LuminaGuard turned forwarding on.
 * Host-wide, not per state directory: two state directories (a test's and the
 * default) must agree on who restores, or the second would see forwarding
 * already on, save nothing, and leave it on after the first's record is gone.
 */
const RECORD = "/run/luminaguard/ip-forward.json";

/** Turn forwarding on; returns the previous settings when it was off (so the caller records them), undefined when it was already on. */
export function enableForwarding(): SavedForwarding | undefined {
  const ipForward = readSetting(IP_FORWARD);
  if (ipForward === "1") return undefined;
  const saved = { ipForward, acceptRedirects: readSetting(ACCEPT_REDIRECTS) };
  mkdirSync(dirname(RECORD), { recursive: true, mode: 0o700 });
  writeFileSync(RECORD, JSON.stringify(saved));
  writeSetting(IP_FORWARD, "1");
  return saved;
}

/** What enableForwarding saved in any LuminaGuard process of this host, if forwarding is still ours to restore. */
export function savedForwarding(): SavedForwarding | undefined {
  try {
    const r = JSON.parse(readFileSync(RECORD, "utf8")) as Partial<SavedForwarding>;
    return typeof r.ipForward === "string" && typeof r.acceptRedirects === "string" ? { ipForward: r.ipForward, acceptRedirects: r.acceptRedirects } : undefined;
  } catch {
    return undefined;
  }
}

/** Put back what enableForwarding saved, and forget the host-wide record. */
export function restoreForwarding(saved: SavedForwarding): void {
  writeSetting(IP_FORWARD, saved.ipForward);
  writeSetting(ACCEPT_REDIRECTS, saved.acceptRedirects);
  rmSync(RECORD, { force: true });
}

/** The current value of net.ipv4.ip_forward ("0" or "1"). */
export function currentIpForward(): string {
  return readSetting(IP_FORWARD);
}

/** True while any `lgh*` veth exists: some LuminaGuard sandbox (maybe of another state directory) still needs forwarding. */
export function sandboxLinksExist(): boolean {
  try {
    return readdirSync("/sys/class/net").some((n) => n.startsWith(HOST_IF_PREFIX));
  } catch {
    return false;
  }
}

function readSetting(file: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch (err) {
    throw new FirewallError("E_FIREWALL_NETNS", `Cannot read ${file}: ${(err as Error).message}. Sandbox networking needs /proc/sys (is /proc mounted?).`, { cause: err });
  }
}

function writeSetting(file: string, value: string): void {
  try {
    writeFileSync(file, value);
  } catch (err) {
    throw new FirewallError("E_FIREWALL_NETNS", `Cannot set ${file} to ${value}: ${(err as Error).message}. Run LuminaGuard as root with a writable /proc/sys (inside a container: --privileged or --sysctl net.ipv4.ip_forward=1).`, {
      cause: err,
    });
  }
}
