/**
 * Finding and removing our objects from a listing of the table, for sweep
 * (leftovers of crashed processes) and for a release whose exact removal
 * script failed (someone removed part of it already).
 */
import type { Nft } from "./apply.js";
import { CHAIN_PREFIX, FAMILY, TABLE, sandboxNames, shortOf } from "./names.js";
import { releaseScript, type SandboxObjects } from "./nft.js";
import { nftItems } from "./stats.js";

/** Names in our table, as found in `nft -j list table`. */
export interface TableListing {
  chains: string[];
  sets: string[];
  counters: string[];
  /** Keys of forward_map and input_map (interface names). */
  forwardKeys: string[];
  inputKeys: string[];
  masquerade: string[];
}

/** Pick the names out of `nft -j list table inet luminaguard`. */
export function parseTableListing(json: unknown): TableListing {
  const out: TableListing = { chains: [], sets: [], counters: [], forwardKeys: [], inputKeys: [], masquerade: [] };
  for (const item of nftItems(json)) {
    const it = item as Record<string, { name?: string; elem?: unknown[] } | undefined>;
    if (it.chain?.name) out.chains.push(it.chain.name);
    if (it.counter?.name) out.counters.push(it.counter.name);
    if (it.set?.name) {
      out.sets.push(it.set.name);
      if (it.set.name === "masquerade_src") out.masquerade.push(...(it.set.elem ?? []).map(String));
    }
    if (it.map?.name) {
      // Map elements list as [key, verdict] pairs.
      const keys = (it.map.elem ?? []).map((e) => (Array.isArray(e) ? String(e[0]) : "")).filter(Boolean);
      if (it.map.name === "forward_map") out.forwardKeys.push(...keys);
      if (it.map.name === "input_map") out.inputKeys.push(...keys);
    }
  }
  return out;
}

/** What of sandbox `short` is in the listing; `sandboxAddress` (from its lease) finds its masquerade entry. */
export function objectsOf(listing: TableListing, short: string, sandboxAddress: string | undefined): SandboxObjects {
  const n = sandboxNames(short);
  const mine = (name: string) => shortOf(name) === short;
  return {
    forwardMapKey: listing.forwardKeys.includes(n.hostIf),
    inputMapKey: listing.inputKeys.includes(n.hostIf),
    masqueradeAddress: sandboxAddress !== undefined && listing.masquerade.includes(sandboxAddress) ? sandboxAddress : undefined,
    chains: listing.chains.filter(mine),
    sets: listing.sets.filter(mine),
    counters: listing.counters.filter(mine),
  };
}

/** Human-readable names of objects, for sweep's report. */
export function describeObjects(o: SandboxObjects): string[] {
  return [...o.chains.map((c) => `nft chain ${c}`), ...o.sets.map((s) => `nft set ${s}`), ...o.counters.map((c) => `nft counter ${c}`)];
}

function isEmpty(o: SandboxObjects): boolean {
  return !o.forwardMapKey && !o.inputMapKey && !o.masqueradeAddress && o.chains.length + o.sets.length + o.counters.length === 0;
}

/**
 * Remove, in one transaction, whatever the listing shows of these sandboxes.
 * Returns what was removed and the sandbox chains left in the table afterwards
 * (undefined when the table does not exist).
 */
export async function removeListedObjects(nft: Nft, sandboxes: { short: string; sandboxAddress: string | undefined }[]): Promise<{ removed: string[]; remainingChains: string[] | undefined; failure?: string }> {
  const json = await nft.table();
  if (json === undefined) return { removed: [], remainingChains: undefined };
  const listing = parseTableListing(json);
  const found = sandboxes.map((s) => ({ s, o: objectsOf(listing, s.short, s.sandboxAddress) })).filter(({ o }) => !isEmpty(o));
  const script = found.map(({ s, o }) => releaseScript(sandboxNames(s.short), o)).join("");
  const gone = new Set(found.flatMap(({ o }) => o.chains));
  const remainingChains = listing.chains.filter((c) => c.startsWith(CHAIN_PREFIX) && !gone.has(c));
  if (script === "") return { removed: [], remainingChains };
  const r = await nft.tryApply(script);
  if (r.code !== 0) return { removed: [], remainingChains: listing.chains.filter((c) => c.startsWith(CHAIN_PREFIX)), failure: r.output };
  return { removed: found.flatMap(({ o }) => describeObjects(o)), remainingChains };
}

/** `delete table` for our table; only called when no sandbox chain is left in it. */
export function deleteTableScript(): string {
  return `delete table ${FAMILY} ${TABLE}\n`;
}
