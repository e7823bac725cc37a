/**
 * What the protocol handlers (CONNECT, plain HTTP, SOCKS5) need from the
 * proxy, and the one-per-request record of its decision. Handlers see this
 * interface, not the EgressProxy class, so they stay testable and the class
 * stays the only owner of sockets, policies and counters.
 */
import type { Socket } from "node:net";
import type { CompiledPolicy } from "./proxy-decide.js";
import type { DialOptions } from "./proxy-dial.js";
import type { RelayTunnel } from "./proxy-relay.js";
import type { ProxyDecision, ProxyEvent, ProxyProtocol, ProxyReason, Refusal } from "./proxy-types.js";

/** Distributes Omit over a union, so each event keeps its own fields. */
export type WithoutTime<T> = T extends unknown ? Omit<T, "time"> : never;

/** The proxy as its handlers see it. */
export interface ProxyContext {
  /** The policy for a client address (already normalized), at this moment. */
  policyFor(client: string): CompiledPolicy | undefined;
  dialOptions(signal: AbortSignal): DialOptions;
  readonly idleTimeoutMs: number;
  readonly tlsPeekTimeoutMs: number;
  emit(event: WithoutTime<ProxyEvent>): void;
  count(sandboxId: string, destination: string, kind: "allowed" | "denied"): void;
  /** Add a finished tunnel's bytes (sent: sandbox to destination; received: the other way). */
  countBytes(sandboxId: string, destination: string, sent: number, received: number): void;
  /** Offer a checked tunnel, piped both ways, to the kernel relay (it takes busy ones). */
  relay(tunnel: RelayTunnel): void;
  /** Register an upstream socket so close() can destroy it. */
  track(socket: Socket): void;
}

/** The decision on one request or tunnel, counted and logged exactly once, when it is final. */
export class Outcome {
  private settled = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly base: { client: string; policy: CompiledPolicy | undefined; protocol: ProxyProtocol; destination: string },
  ) {}

  /** Record the decision; later calls are ignored (the first final word counts). */
  settle(decision: ProxyDecision, reason: ProxyReason, extra: { sni?: string; detail?: string } = {}): void {
    if (this.settled) return;
    this.settled = true;
    const { client, policy, protocol, destination } = this.base;
    if (policy) this.ctx.count(policy.sandboxId, destination, decision === "allow" ? "allowed" : "denied");
    this.ctx.emit({
      type: "decision",
      client,
      sandboxId: policy?.sandboxId,
      mode: policy?.mode,
      protocol,
      destination,
      decision,
      reason,
      ...(extra.sni !== undefined ? { sni: extra.sni } : {}),
      ...(extra.detail !== undefined ? { detail: extra.detail } : {}),
    });
  }

  /** Count the bytes of a tunnel that has ended. */
  bytes(sent: number, received: number): void {
    const { policy, destination } = this.base;
    if (policy) this.ctx.countBytes(policy.sandboxId, destination, sent, received);
  }

  /** Log an upstream failure (502/504) that ended an allowed request. */
  upstreamError(refusal: Refusal): void {
    const { client, policy, protocol, destination } = this.base;
    this.ctx.emit({
      type: "upstream-error",
      client,
      sandboxId: policy?.sandboxId,
      protocol,
      destination,
      status: refusal.status === 504 ? 504 : 502,
      message: refusal.message,
    });
  }
}
