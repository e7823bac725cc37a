/**
 * Resolving an allowed name and connecting to it, for the egress proxy.
 *
 * The proxy resolves names itself (the sandbox's own DNS answer is never
 * trusted) and refuses addresses in the blocked ranges: an allowed name whose
 * DNS answer is changed to 127.0.0.1 must not become a way into services that
 * listen on the host's loopback (DNS rebinding). Inside the sandbox, 127.0.0.1
 * is its own namespace; through the proxy it would be the host's.
 */
import { promises as dns } from "node:dns";
import { BlockList, connect, isIP, type Socket } from "node:net";
import { FirewallError } from "./errors.js";
import { blockedAddressRefusal, failure } from "./proxy-decide.js";
import type { CanonicalHost } from "./proxy-match.js";
import type { Refusal } from "./proxy-types.js";

/**
 * Ranges the proxy never connects to by default: loopback, "this network" and
 * unspecified, link-local, multicast, and the reserved block with broadcast.
 * Private ranges (10/8, 192.168/16, fc00::/7) are not here: real internal APIs
 * live there and the firewall's own test hosts do too. The firewall adds the
 * sandboxes' own range.
 */
export const DEFAULT_BLOCKED_TARGETS: readonly string[] = [
  "127.0.0.0/8",
  "0.0.0.0/8",
  "169.254.0.0/16",
  "224.0.0.0/4",
  "240.0.0.0/4",
  "::1/128",
  "::/128",
  "fe80::/10",
  "ff00::/8",
];

/** Compile CIDR text into a BlockList; a bad entry is a configuration error. */
export function compileBlockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr = "", prefixText] = cidr.split("/");
    const family = isIP(addr);
    const max = family === 6 ? 128 : 32;
    const prefix = prefixText === undefined ? max : Number(prefixText);
    if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
      throw new FirewallError("E_FIREWALL_PROXY", `egress proxy: blocked target "${cidr}" is not an address or CIDR block (e.g. "127.0.0.0/8")`);
    }
    list.addSubnet(addr, prefix, family === 6 ? "ipv6" : "ipv4");
  }
  return list;
}

/** The system resolver: every address `getaddrinfo` returns, in its order. */
export async function systemResolve(name: string): Promise<string[]> {
  const found = await dns.lookup(name, { all: true, order: "verbatim" });
  return found.map((a) => a.address);
}

/** A refusal raised while dialing; the handler turns it into a response. */
export class DialRefusal extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.message);
    this.name = "DialRefusal";
  }
}

/** What dial needs from the proxy. */
export interface DialOptions {
  resolve: (name: string) => Promise<string[]>;
  blocked: BlockList;
  connectTimeoutMs: number;
  /** Aborted when the client goes away; the attempt is dropped. */
  signal: AbortSignal;
}

/** Addresses to try: at most this many, so a long DNS answer cannot stretch one request. */
const MAX_ATTEMPTS = 4;

/** Resolve `target` and connect to the first address that is not blocked and answers. Throws DialRefusal. */
export async function dial(target: CanonicalHost, port: number, opts: DialOptions): Promise<{ socket: Socket; address: string }> {
  const deadline = Date.now() + opts.connectTimeoutMs;
  const resolved = target.kind === "name" ? await resolveWithin(target.host, opts, deadline) : [target.host];
  const addresses = resolved.map(unmapV4).filter((a) => isIP(a) !== 0);
  if (addresses.length === 0) throw new DialRefusal(failure(502, `"${target.host}" did not resolve to any address`));
  const usable = addresses.filter((a) => !opts.blocked.check(a, isIP(a) === 6 ? "ipv6" : "ipv4"));
  if (usable.length === 0) throw new DialRefusal(blockedAddressRefusal(target.host, addresses));

  let last: Refusal | undefined;
  for (const address of usable.slice(0, MAX_ATTEMPTS)) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    try {
      return { socket: await connectWithin(address, port, left, opts.signal), address };
    } catch (err) {
      if (opts.signal.aborted) throw err;
      last = connectFailure(target.host, address, port, err);
    }
  }
  throw new DialRefusal(last ?? failure(504, `connecting to "${target.host}" port ${port} timed out after ${opts.connectTimeoutMs} ms`));
}

async function resolveWithin(name: string, opts: DialOptions, deadline: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DialRefusal(failure(504, `resolving "${name}" timed out after ${opts.connectTimeoutMs} ms`))), Math.max(0, deadline - Date.now()));
  });
  try {
    const found = await Promise.race([opts.resolve(name), timeout]);
    return Array.isArray(found) ? found : [];
  } catch (err) {
    if (err instanceof DialRefusal) throw err;
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const why = code === "ENOTFOUND" || code === "ENODATA" ? "no such name" : (code ?? String(err));
    throw new DialRefusal(failure(502, `could not resolve "${name}" (${why})`));
  } finally {
    clearTimeout(timer);
  }
}

/** Connect to one address; rejects on error, timeout or abort (destroying the socket). */
function connectWithin(address: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(gone());
      return;
    }
    // allowHalfOpen: a server that finishes sending must not cut off what the client still sends.
    const socket = connect({ host: address, port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => fail(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" })), timeoutMs);
    const onAbort = () => fail(gone());
    signal.addEventListener("abort", onAbort, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      socket.off("error", fail);
    }
    function fail(err: Error) {
      done();
      socket.destroy();
      reject(err);
    }
    socket.once("error", fail);
    socket.once("connect", () => {
      done();
      resolve(socket);
    });
  });
}

/** The client closed while we were connecting for it; nobody will read this. */
function gone(): DialRefusal {
  return new DialRefusal(failure(502, "the client closed the connection"));
}

function connectFailure(host: string, address: string, port: number, err: unknown): Refusal {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const where = `"${host}" (${isIP(address) === 6 ? `[${address}]` : address}:${port})`;
  if (code === "ETIMEDOUT") return failure(504, `connecting to ${where} timed out`);
  if (code === "ECONNREFUSED") return failure(502, `${where} refused the connection`);
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return failure(502, `${where} is unreachable from this host`);
  return failure(502, `connecting to ${where} failed (${code ?? String(err)})`);
}

/** "::ffff:10.0.0.1" is the IPv4 address 10.0.0.1; compare and connect by that. */
export function unmapV4(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}
