/**
 * nftables scripts, as pure functions of their inputs (unit-tested as text).
 *
 * One table, `inet luminaguard`, holds everything:
 * - base chains that touch only traffic of `lgh*` interfaces (our veths):
 *   `forward` lets replies into a sandbox, drops every new connection into one
 *   (from outside or from another sandbox), and sends each sandbox's egress to
 *   its own chain through the verdict map `forward_map` (keyed on the incoming
 *   interface); `input` does the same for traffic to the host itself through
 *   `input_map`; `output` stops the host from opening connections into a
 *   sandbox; `postrouting` masquerades sandbox addresses leaving for the world.
 *   The base chains' policy is accept, so other traffic is never affected, while
 *   every per-sandbox chain ends in a verdict (default deny for ours).
 * - per sandbox `sb_<short>` (egress) and `sb_<short>_in` (to the host), their
 *   sets and counters. A policy update is one transaction that flushes and
 *   refills these, leaving every other sandbox untouched.
 *
 * Allowed packets are checked against the set on every packet, not only the
 * first of a connection, so removing a destination also cuts connections that
 * are already open.
 */
import type { NetworkMode } from "./policy.js";
import { formatElement, type SetElement } from "./elements.js";
import { FAMILY, HOST_IF_PREFIX, TABLE, type SandboxNames } from "./names.js";

const T = `${FAMILY} ${TABLE}`;
/** The key every set is looked up and counted with. */
const KEY = "ip daddr . meta l4proto . th dport";
const SET_TYPE = "type ipv4_addr . inet_proto . inet_service";
/** Distinct destinations counted per sandbox and verdict; the totals stay exact beyond it. */
export const COUNTER_SET_SIZE = 4096;
/** Log at most this many denied connections per second and sandbox (bursts of twice that): a scan must not flood the kernel log. */
const LOG_RATE = "limit rate 10/second burst 20 packets";

/** What one sandbox's rules are made of. */
export interface SandboxRuleSpec {
  names: SandboxNames;
  sandboxAddress: string;
  mode: NetworkMode;
  /** Egress destinations (already disjoint). */
  allow: SetElement[];
  /** Destinations on the host itself: the proxy, local resolvers. Always enforced, whatever the mode. */
  host: SetElement[];
}

/** Table, base chains, maps and their rules; safe to run again (rules are flushed and re-added in the same transaction). */
export function baseScript(): string {
  const lgh = `"${HOST_IF_PREFIX}*"`;
  return lines([
    `add table ${T}`,
    `add chain ${T} forward { type filter hook forward priority filter; policy accept; }`,
    `add chain ${T} input { type filter hook input priority filter; policy accept; }`,
    `add chain ${T} output { type filter hook output priority filter; policy accept; }`,
    `add chain ${T} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `add map ${T} forward_map { type ifname : verdict; }`,
    `add map ${T} input_map { type ifname : verdict; }`,
    `add set ${T} masquerade_src { type ipv4_addr; }`,
    `flush chain ${T} forward`,
    `add rule ${T} forward oifname ${lgh} ct state established,related accept`,
    `add rule ${T} forward oifname ${lgh} drop`,
    `add rule ${T} forward iifname ${lgh} iifname vmap @forward_map`,
    `add rule ${T} forward iifname ${lgh} drop`,
    `flush chain ${T} input`,
    `add rule ${T} input iifname ${lgh} iifname vmap @input_map`,
    `add rule ${T} input iifname ${lgh} drop`,
    `flush chain ${T} output`,
    `add rule ${T} output oifname ${lgh} ct state new drop`,
    `flush chain ${T} postrouting`,
    `add rule ${T} postrouting oifname != ${lgh} ip saddr @masquerade_src masquerade`,
  ]);
}

/** A sandbox's chains, sets and counters (created when missing) with its rules (replaced). Counters and per-destination stats are kept. */
export function sandboxScript(spec: SandboxRuleSpec): string {
  const n = spec.names;
  const out = [
    `add chain ${T} ${n.chain}`,
    `add chain ${T} ${n.inChain}`,
    `add set ${T} ${n.allowSet} { ${SET_TYPE}; flags interval; }`,
    `add set ${T} ${n.hostSet} { ${SET_TYPE}; flags interval; }`,
    `add set ${T} ${n.acceptedSet} { ${SET_TYPE}; size ${COUNTER_SET_SIZE}; flags dynamic; }`,
    `add set ${T} ${n.deniedSet} { ${SET_TYPE}; size ${COUNTER_SET_SIZE}; flags dynamic; }`,
    `add counter ${T} ${n.allowedCounter}`,
    `add counter ${T} ${n.deniedCounter}`,
    `flush chain ${T} ${n.chain}`,
    `flush chain ${T} ${n.inChain}`,
    `flush set ${T} ${n.allowSet}`,
    `flush set ${T} ${n.hostSet}`,
  ];
  if (spec.allow.length > 0) out.push(`add element ${T} ${n.allowSet} { ${spec.allow.map(formatElement).join(", ")} }`);
  if (spec.host.length > 0) out.push(`add element ${T} ${n.hostSet} { ${spec.host.map(formatElement).join(", ")} }`);
  const rule = (chain: string, body: string) => out.push(`add rule ${T} ${chain} ${body}`);
  const countAllowed = `counter name "${n.allowedCounter}" update @${n.acceptedSet} { ${KEY} counter }`;
  const countDenied = `counter name "${n.deniedCounter}" update @${n.deniedSet} { ${KEY} counter }`;
  const preamble = (chain: string) => {
    // Sandboxes get no IPv6 address; dropping it quietly keeps link-local chatter out of the deny log.
    rule(chain, "meta nfproto ipv6 drop");
    // A sandbox may only speak with its own address: no spoofing another sandbox's replies.
    rule(chain, `ip saddr != ${spec.sandboxAddress} drop`);
  };
  const filtered = (chain: string, set: string, mode: "enforce" | "test") => {
    rule(chain, `ct state new ${KEY} @${set} ${countAllowed}`);
    rule(chain, `${KEY} @${set} accept`);
    rule(chain, `ct state new ${countDenied}`);
    rule(chain, `ct state new ${LOG_RATE} log prefix "${mode === "enforce" ? "lg-deny" : "lg-would-deny"} ${n.short} "`);
    rule(chain, mode === "enforce" ? "drop" : "accept");
  };
  preamble(n.chain);
  if (spec.mode === "disabled") {
    rule(n.chain, `ct state new ${countAllowed}`);
    rule(n.chain, "accept");
  } else filtered(n.chain, n.allowSet, spec.mode);
  preamble(n.inChain);
  filtered(n.inChain, n.hostSet, "enforce");
  return lines(out);
}

/**
 * Everything a new sandbox needs in one transaction: its own objects and the map
 * entries that switch it on, with the base (`withBase`, default) when the table
 * may not exist yet.
 */
export function attachScript(spec: SandboxRuleSpec, opts: { withBase?: boolean } = {}): string {
  const n = spec.names;
  return (
    (opts.withBase === false ? "" : baseScript()) +
    sandboxScript(spec) +
    lines([
      `add element ${T} forward_map { "${n.hostIf}" : goto ${n.chain} }`,
      `add element ${T} input_map { "${n.hostIf}" : goto ${n.inChain} }`,
      `add element ${T} masquerade_src { ${spec.sandboxAddress} }`,
    ])
  );
}

/** The objects of one sandbox that exist, for a removal script. */
export interface SandboxObjects {
  forwardMapKey: boolean;
  inputMapKey: boolean;
  masqueradeAddress?: string | undefined;
  chains: string[];
  sets: string[];
  counters: string[];
}

/** Everything attachScript created for a sandbox. */
export function allObjects(names: SandboxNames, sandboxAddress: string): SandboxObjects {
  return {
    forwardMapKey: true,
    inputMapKey: true,
    masqueradeAddress: sandboxAddress,
    chains: [names.chain, names.inChain],
    sets: [names.allowSet, names.hostSet, names.acceptedSet, names.deniedSet],
    counters: [names.allowedCounter, names.deniedCounter],
  };
}

/** Remove a sandbox's objects in one transaction: map entries first (they reference the chains), chains (their rules reference the sets), then sets and counters. */
export function releaseScript(names: SandboxNames, objects: SandboxObjects): string {
  const out: string[] = [];
  if (objects.forwardMapKey) out.push(`delete element ${T} forward_map { "${names.hostIf}" }`);
  if (objects.inputMapKey) out.push(`delete element ${T} input_map { "${names.hostIf}" }`);
  if (objects.masqueradeAddress) out.push(`delete element ${T} masquerade_src { ${objects.masqueradeAddress} }`);
  for (const c of objects.chains) out.push(`delete chain ${T} ${c}`);
  for (const s of objects.sets) out.push(`delete set ${T} ${s}`);
  for (const c of objects.counters) out.push(`delete counter ${T} ${c}`);
  return lines(out);
}

/** `nft` argument lists that print a sandbox's rules and sets for people. */
export function listCommands(names: SandboxNames): string[][] {
  return [
    ["list", "set", FAMILY, TABLE, names.allowSet],
    ["list", "set", FAMILY, TABLE, names.hostSet],
    ["list", "chain", FAMILY, TABLE, names.chain],
    ["list", "chain", FAMILY, TABLE, names.inChain],
  ];
}

function lines(ls: string[]): string {
  return ls.map((l) => `${l}\n`).join("");
}
