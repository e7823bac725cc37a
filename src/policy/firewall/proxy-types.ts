/**
 * The public shapes of the egress proxy (policy, options, events) and the
 * refusal a handler turns into a response. Kept apart from the class so the
 * handlers and the decision code can share them without importing each other.
 */
import type { RelayOptions } from "./proxy-relay.js";

/** enforce: refuse what is not allowed; test: let it through but log and count it as denied; disabled: allow all, log. */
export type ProxyMode = "enforce" | "test" | "disabled";

/** What one sandbox may reach through the proxy. */
export interface ProxyPolicy {
  sandboxId: string;
  /** Allowed names: "api.example.com", "*.example.org" (subdomains only), optionally ":port"; IP literals only when listed. */
  domains: string[];
  mode: ProxyMode;
}

/** How the sandbox reached the proxy. */
export type ProxyProtocol = "connect" | "http" | "socks5";

/** allow: let through; deny: refused; would-deny: let through in test mode, but enforce would refuse it. */
export type ProxyDecision = "allow" | "deny" | "would-deny";

/**
 * Why a decision was made.
 * - listed: the allow-list has it; disabled: mode "disabled"; no-sni: allowed TLS without a server name (logged on purpose).
 * - no-policy: the client address has no policy; domain / port / ip-literal: the allow-list refuses the target.
 * - address: the name resolves only to addresses the proxy never connects to (loopback, link-local, ...).
 * - sni-mismatch / bad-tls / not-tls / tls-timeout: the tunnel's first bytes are not a ClientHello for the checked name.
 */
export type ProxyReason =
  | "listed"
  | "disabled"
  | "no-sni"
  | "no-policy"
  | "domain"
  | "port"
  | "ip-literal"
  | "address"
  | "sni-mismatch"
  | "bad-tls"
  | "not-tls"
  | "tls-timeout";

/** One thing the proxy did, for logs and audit. */
export type ProxyEvent =
  | {
      type: "decision";
      time: number;
      /** The sandbox's source address. */
      client: string;
      sandboxId: string | undefined;
      mode: ProxyMode | undefined;
      protocol: ProxyProtocol;
      /** "host:port" as requested (canonical). */
      destination: string;
      decision: ProxyDecision;
      reason: ProxyReason;
      /** The TLS server name, when one was read. */
      sni?: string;
      /** Extra words for a human (the refusal text, a parse problem). */
      detail?: string;
    }
  | {
      type: "upstream-error";
      time: number;
      client: string;
      sandboxId: string | undefined;
      protocol: ProxyProtocol;
      destination: string;
      status: 502 | 504;
      message: string;
    }
  | { type: "client-error"; time: number; client: string; status: number; message: string }
  | { type: "connection-limit"; time: number; client: string; limit: number }
  /** The kernel relay is unavailable or saturated and tunnels use the Node relay (logged once per reason). */
  | { type: "relay"; time: number; message: string }
  | { type: "listening"; time: number; host: string; port: number }
  | { type: "closed"; time: number };

/** Options of `new EgressProxy(...)`. */
export interface EgressProxyOptions {
  /** Where to listen; port 0 picks a free port (see addresses()). */
  listen: { host: string; port: number }[];
  /** Name to addresses. Default: the system resolver (`dns.promises.lookup`, all addresses). Tests inject a map. */
  resolve?: (name: string) => Promise<string[]>;
  /**
   * CIDR blocks the proxy never connects to, whatever the policy says. The default
   * (DEFAULT_BLOCKED_TARGETS: loopback, unspecified, link-local, multicast) keeps an
   * allowed name that resolves to 127.0.0.1 from reaching services on the host
   * (DNS rebinding). Tests that run upstream servers on loopback pass [] on purpose.
   */
  blockedTargets?: readonly string[];
  /** Give up connecting (resolve included) after this long: 504. Default 10 s. */
  connectTimeoutMs?: number;
  /** Close a connection, or a tunnel, idle in both directions this long. Default 5 min. */
  idleTimeoutMs?: number;
  /** Wait this long for a TLS ClientHello before refusing a port-443 tunnel. Default 10 s. */
  tlsPeekTimeoutMs?: number;
  /** Open connections one client address may hold; further ones get a 429. Default 128. */
  maxConnectionsPerClient?: number;
  /** Largest request head (request line and headers) accepted; larger gets a 431. Default 16 KiB. */
  maxHeaderBytes?: number;
  /**
   * The kernel relay (lg-relay, splice(2)) that busy tunnels move to once checked. Default: on, with
   * dist/bin/lg-relay of this package when it is built; `{ path: false }` keeps every tunnel in Node.
   */
  relay?: RelayOptions;
  /** Receives one event per decision, error and lifecycle step. Must not throw. */
  log?: (e: ProxyEvent) => void;
}

/** A refusal or failure turned into a response: an HTTP status, a short text for the agent, and the kind. */
export interface Refusal {
  status: 400 | 403 | 408 | 429 | 431 | 501 | 502 | 504;
  /** One line for the agent reading the response. */
  message: string;
  /**
   * Value of the X-LuminaGuard-Denied header for policy refusals: "domain", "port", "ip-literal",
   * "client" (no policy), "address" (blocked range), "not-tls" (plain text on a 443 tunnel),
   * "sni" (only in logs: that refusal is a TLS alert). Absent for failures (400, 502, 504).
   */
  denied?: string;
}
