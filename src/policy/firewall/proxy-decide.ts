/**
 * The egress proxy's verdict on one request, before anything is resolved or
 * connected, and the words an agent reads when it is refused. The agent is
 * the audience: it should learn what was refused, why, and what is allowed,
 * so it can stop retrying or ask for the policy to change.
 */
import { compileAllowList, formatAuthority, matchTarget, type AllowList, type CanonicalHost } from "./proxy-match.js";
import type { ProxyDecision, ProxyMode, ProxyPolicy, ProxyReason, Refusal } from "./proxy-types.js";

/** A policy with its allow-list compiled once, when it is set. */
export interface CompiledPolicy {
  sandboxId: string;
  mode: ProxyMode;
  list: AllowList;
  /** The entries as written, for messages. */
  shown: string[];
}

/** Compile a policy for fast per-request checks. */
export function compilePolicy(policy: ProxyPolicy): CompiledPolicy {
  const list = compileAllowList(policy.domains);
  return { sandboxId: policy.sandboxId, mode: policy.mode, list, shown: list.entries.map((e) => e.text) };
}

/** The verdict on a target. `refusal` is set exactly when the decision is "deny". */
export interface Verdict {
  decision: ProxyDecision;
  reason: ProxyReason;
  refusal?: Refusal;
  /** The refusal text also for "would-deny", for the log. */
  detail?: string;
}

const PREFIX = "LuminaGuard egress proxy:";
/** Messages name at most this many allowed entries; a sandbox with hundreds would drown the reason. */
const MAX_SHOWN = 20;

/** Decide on `target:port` for a client with `policy` (undefined: no policy, refused). */
export function decide(policy: CompiledPolicy | undefined, client: string, target: CanonicalHost, port: number): Verdict {
  if (!policy) {
    const refusal = deny("client", `${PREFIX} this client (${client}) has no egress policy, so it may reach nothing through the proxy`);
    return { decision: "deny", reason: "no-policy", refusal, detail: refusal.message };
  }
  if (policy.mode === "disabled") return { decision: "allow", reason: "disabled" };
  const match = matchTarget(policy.list, target, port);
  if (match.allowed) return { decision: "allow", reason: "listed" };
  const q = `"${target.host}"`;
  let refusal: Refusal;
  switch (match.reason) {
    case "port":
      refusal = deny("port", `${PREFIX} ${q} is allowed only on port ${match.portsForHost.join(", ")}, not ${port} (add "${formatAuthority(target, port)}" to the allowed domains to allow it)`);
      break;
    case "ip-literal":
      refusal = deny("ip-literal", `${PREFIX} ${q} is an IP address; this sandbox may connect only by name to its allowed domains (${allowedText(policy)})`);
      break;
    case "domain":
      refusal = deny("domain", `${PREFIX} ${q} is not in this sandbox's allowed domains (${allowedText(policy)})`);
      break;
  }
  if (policy.mode === "test") return { decision: "would-deny", reason: match.reason, detail: refusal.message };
  return { decision: "deny", reason: match.reason, refusal, detail: refusal.message };
}

/** "allowed: a, b" or "none are allowed", shortened past MAX_SHOWN entries. */
function allowedText(policy: CompiledPolicy): string {
  if (policy.shown.length === 0) return "no domains are allowed";
  const shown = policy.shown.slice(0, MAX_SHOWN).join(", ");
  const more = policy.shown.length > MAX_SHOWN ? ` and ${policy.shown.length - MAX_SHOWN} more` : "";
  return `allowed: ${shown}${more}`;
}

function deny(kind: string, message: string): Refusal {
  return { status: 403, message, denied: kind };
}

/** The refusal for a name whose addresses are all in the blocked ranges. */
export function blockedAddressRefusal(host: string, addresses: readonly string[]): Refusal {
  return deny(
    "address",
    `${PREFIX} "${host}" resolves to ${addresses.slice(0, 4).join(", ")}, which the proxy never connects to ` +
      "(loopback, link-local, multicast and unspecified addresses would reach this host, not the internet)",
  );
}

/** The refusal for a TLS tunnel whose ClientHello names another server than the CONNECT line. */
export function sniRefusal(target: string, sni: string): Refusal {
  return deny("sni", `${PREFIX} the TLS server name "${sni}" differs from the tunnel's "${target}"; a tunnel may only talk to the name it was opened for`);
}

/** A failure that is not a policy refusal (bad request, upstream down, timeout). */
export function failure(status: Refusal["status"], message: string): Refusal {
  return { status, message: `${PREFIX} ${message}` };
}

const REASON_PHRASES: Record<Refusal["status"], string> = {
  400: "Bad Request",
  403: "Forbidden",
  408: "Request Timeout",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  502: "Bad Gateway",
  504: "Gateway Timeout",
};

/** The headers of a refusal response (without framing). */
export function refusalHeaders(r: Refusal): Record<string, string> {
  return {
    "Content-Type": "text/plain; charset=utf-8",
    ...(r.denied ? { "X-LuminaGuard-Denied": r.denied } : {}),
    Connection: "close",
  };
}

/** A complete HTTP/1.1 response for a refusal, for writing straight on a socket (CONNECT, early rejects). */
export function rawRefusal(r: Refusal): string {
  const body = `${r.message}\n`;
  const headers = Object.entries({ ...refusalHeaders(r), "Content-Length": String(Buffer.byteLength(body)) })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  return `HTTP/1.1 ${r.status} ${REASON_PHRASES[r.status]}\r\n${headers}\r\n${body}`;
}
