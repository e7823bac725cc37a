/**
 * Make a cloned VM its own: clones of one snapshot share the kernel RNG state,
 * the clock and the hostname. Entropy and the clock go through the C helper
 * (images/guest/lg-guest-helper.c: ioctl and clock_settime are out of Node's
 * reach); the hostname is a write to /proc. Tests on a host turn the clock and
 * the hostname off (they are the host's own).
 */
import { execFile } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { AgentError } from "./errors.js";

export interface ReseedOptions {
  /** Path of lg-guest-helper; undefined when the agent was started without one. */
  helper: string | undefined;
  setClock: boolean;
  setHostname: boolean;
}

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Check a hostname before it reaches the kernel or bwrap's --hostname. */
export function validHostname(name: string): boolean {
  return name.length <= 64 && HOSTNAME.test(name);
}

function runHelper(helper: string, args: string[], input?: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(helper, args, { timeout: 5000, env: {} }, (err, _stdout, stderr) => {
      if (err) reject(new AgentError("E_SANDBOX_START", `lg-guest-helper ${args[0]} failed: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
    child.stdin?.on("error", () => {});
    child.stdin?.end(input);
  });
}

/** Mix in entropy and reseed the kernel RNG, set the clock and the hostname (as enabled). */
export async function reseedGuest(o: ReseedOptions, req: { entropy: Uint8Array; timeMs: number; hostname: string }): Promise<void> {
  if (!validHostname(req.hostname)) throw new AgentError("E_EXEC_INVALID", `Invalid hostname ${JSON.stringify(req.hostname)}: letters, digits, '-' and '.', at most 64.`);
  const needsHelper = req.entropy.byteLength > 0 || o.setClock;
  if (needsHelper && (!o.helper || !existsSync(o.helper))) {
    throw new AgentError("E_SANDBOX_START", `The guest helper ${o.helper ?? "(none given with --helper)"} is missing, so this clone cannot be reseeded; rebuild the guest image (luminaguard image build --force).`);
  }
  if (req.entropy.byteLength > 0) await runHelper(o.helper!, ["reseed"], req.entropy);
  if (o.setClock) {
    const ns = BigInt(Math.round(req.timeMs)) * 1_000_000n;
    await runHelper(o.helper!, ["settime", ns.toString()]);
  }
  if (o.setHostname) {
    try {
      writeFileSync("/proc/sys/kernel/hostname", req.hostname);
    } catch (err) {
      throw new AgentError("E_SANDBOX_START", `Could not set the guest hostname: ${(err as Error).message}`);
    }
  }
}
