/**
 * Reading the per-sandbox counters back from `nft -j` output.
 *
 * What is counted is the first packet of each new connection: for allowed
 * traffic that is one per connection; for denied traffic every attempt counts
 * (a TCP client retrying its SYN three times is three), because a dropped
 * connection never becomes one in conntrack.
 */

/** Connections to one destination. `port` is null for protocols without ports. */
export interface DestinationStat {
  dest: string;
  port: number | null;
  proto: string;
  connections: number;
}

/** A sandbox's counters: per destination (up to COUNTER_SET_SIZE distinct ones each) and exact totals. */
export interface FirewallStats {
  allowed: DestinationStat[];
  denied: DestinationStat[];
  allowedTotal: number;
  deniedTotal: number;
}

const PORTED = new Set(["tcp", "udp", "sctp", "udplite", "dccp"]);

/** The elements of a dynamic counter set from `nft -j list set`, merged per destination and sorted (most connections first). */
export function parseCounterSet(json: unknown): DestinationStat[] {
  const byKey = new Map<string, DestinationStat>();
  for (const item of nftItems(json)) {
    const set = (item as { set?: { elem?: unknown[] } }).set;
    for (const e of set?.elem ?? []) {
      const elem = (e as { elem?: { val?: { concat?: unknown[] }; counter?: { packets?: number } } }).elem;
      const parts = elem?.val?.concat;
      if (!parts || parts.length !== 3) continue;
      const proto = String(parts[1]);
      // Without a transport port, "th dport" reads other header bytes (an ICMP checksum): fold those together.
      const port = PORTED.has(proto) && typeof parts[2] === "number" ? parts[2] : null;
      const stat = { dest: String(parts[0]), port, proto, connections: elem?.counter?.packets ?? 0 };
      const key = `${stat.dest}|${stat.proto}|${port}`;
      const prev = byKey.get(key);
      if (prev) prev.connections += stat.connections;
      else byKey.set(key, stat);
    }
  }
  return [...byKey.values()].sort((a, b) => b.connections - a.connections || a.dest.localeCompare(b.dest) || (a.port ?? 0) - (b.port ?? 0));
}

/** The packet count of a named counter from `nft -j list counter`. */
export function parseNamedCounter(json: unknown): number {
  for (const item of nftItems(json)) {
    const c = (item as { counter?: { packets?: number } }).counter;
    if (c) return c.packets ?? 0;
  }
  return 0;
}

/** The objects of an `nft -j` listing (the metainfo entry included; callers pick by key). */
export function nftItems(json: unknown): object[] {
  const list = (json as { nftables?: unknown[] } | undefined)?.nftables;
  return Array.isArray(list) ? list.filter((x): x is object => typeof x === "object" && x !== null) : [];
}
