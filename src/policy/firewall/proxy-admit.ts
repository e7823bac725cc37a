/**
 * The first half of every proxied request, whatever the protocol: decide by
 * name, then resolve and connect. Only a connected upstream comes back; every
 * refusal and failure has already been answered, counted and logged.
 */
import type { Socket } from "node:net";
import { Outcome, type ProxyContext } from "./proxy-context.js";
import { decide, failure, type CompiledPolicy, type Verdict } from "./proxy-decide.js";
import { dial, DialRefusal } from "./proxy-dial.js";
import { formatAuthority, type CanonicalHost } from "./proxy-match.js";
import type { ProxyProtocol, Refusal } from "./proxy-types.js";

/** One request to admit. `refuse` answers the client in its protocol and closes. */
export interface AdmitRequest {
  client: Socket;
  clientAddr: string;
  protocol: ProxyProtocol;
  target: CanonicalHost;
  port: number;
  refuse(r: Refusal): void;
}

/** An admitted request: the connected upstream and the decision, still open for the TLS check. */
export interface Admitted {
  upstream: Socket;
  outcome: Outcome;
  policy: CompiledPolicy;
  verdict: Verdict;
}

/** Decide, then connect. Returns undefined when the request was refused, failed, or the client left. */
export async function admit(ctx: ProxyContext, a: AdmitRequest): Promise<Admitted | undefined> {
  const policy = ctx.policyFor(a.clientAddr);
  const outcome = new Outcome(ctx, { client: a.clientAddr, policy, protocol: a.protocol, destination: formatAuthority(a.target, a.port) });
  const verdict = decide(policy, a.clientAddr, a.target, a.port);
  const detail = verdict.detail === undefined ? {} : { detail: verdict.detail };
  if (verdict.refusal || !policy) {
    outcome.settle("deny", verdict.reason, detail);
    a.refuse(verdict.refusal ?? failure(403, "refused"));
    return undefined;
  }

  // The sandbox may give up while we resolve or connect: stop then, and do not answer.
  const abort = new AbortController();
  const onClose = () => abort.abort();
  a.client.once("close", onClose);
  try {
    const { socket } = await dial(a.target, a.port, ctx.dialOptions(abort.signal));
    ctx.track(socket);
    if (a.client.destroyed) {
      socket.destroy();
      outcome.settle(verdict.decision, verdict.reason, detail);
      return undefined;
    }
    return { upstream: socket, outcome, policy, verdict };
  } catch (err) {
    const refusal = err instanceof DialRefusal ? err.refusal : failure(502, `connecting failed (${String(err)})`);
    if (refusal.status === 403) {
      // Blocked addresses are refused in every mode: they protect the host, not the policy.
      outcome.settle("deny", "address", { detail: refusal.message });
    } else {
      outcome.settle(verdict.decision, verdict.reason, detail);
      if (!abort.signal.aborted) outcome.upstreamError(refusal);
    }
    if (!abort.signal.aborted) a.refuse(refusal);
    return undefined;
  } finally {
    a.client.off("close", onClose);
  }
}
