/**
 * Turning allow rules into elements of an nft set typed
 * `ipv4_addr . inet_proto . inet_service` with interval flags.
 *
 * The kernel's set for concatenated ranges (pipapo) refuses an element whose
 * first or last corner falls inside an element already there ("File exists"),
 * so rules that overlap ("10.0.0.0/8 any port" and "10.1.2.3 tcp 443") cannot
 * be loaded as written. CIDR blocks either nest or are disjoint, so rules fall
 * into clusters under their outermost blocks, and only rules of one cluster can
 * overlap. Each cluster is cut into disjoint boxes: elementary protocol
 * intervals, inside each the elementary port intervals, inside each the
 * outermost blocks covering it; then neighbours with identical content are
 * merged back together.
 */
import { cidrContains, type Cidr } from "./cidr.js";

/** One allowed (block, protocol range, port range) triple. */
export interface AllowEntry {
  cidr: Cidr;
  protos: [number, number];
  ports: [number, number];
}

/** A disjoint box, ready to print. */
export interface SetElement {
  cidr: Cidr;
  protos: [number, number];
  ports: [number, number];
}

export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

/** Disjoint elements covering exactly the union of `entries` (IPv4 only; others are ignored). */
export function disjointElements(entries: readonly AllowEntry[]): SetElement[] {
  const v4 = entries.filter((e) => e.cidr.family === 4);
  // Entries under different outermost blocks never overlap, so each such cluster is cut on its own
  // (cutting them together would split "10.9.0.0/16, every port" at the ports of unrelated rules).
  return outermost(v4.map((e) => e.cidr)).flatMap((root) => clusterElements(v4.filter((e) => cidrContains(root, e.cidr))));
}

/** Disjoint elements for entries whose blocks all nest inside one block. */
function clusterElements(v4: readonly AllowEntry[]): SetElement[] {
  const out: SetElement[] = [];
  let prev: { protos: [number, number]; key: string; boxes: PortBox[] } | undefined;
  const flush = () => {
    if (!prev) return;
    for (const b of prev.boxes) for (const cidr of b.cidrs) out.push({ cidr, protos: prev.protos, ports: b.ports });
  };
  for (const protos of elementaryIntervals(v4.map((e) => e.protos))) {
    const boxes = portBoxes(v4.filter((e) => covers(e.protos, protos)));
    if (boxes.length === 0) continue;
    const key = boxes.map((b) => `${b.ports.join("-")}:${b.cidrs.map((c) => c.text).join(",")}`).join(";");
    if (prev && prev.key === key && prev.protos[1] + 1 === protos[0]) {
      prev.protos = [prev.protos[0], protos[1]];
      continue;
    }
    flush();
    prev = { protos, key, boxes };
  }
  flush();
  return out;
}

interface PortBox {
  ports: [number, number];
  cidrs: Cidr[];
}

/** For entries that all cover one protocol interval: disjoint port intervals, each with its outermost blocks. */
function portBoxes(entries: readonly AllowEntry[]): PortBox[] {
  const boxes: PortBox[] = [];
  for (const ports of elementaryIntervals(entries.map((e) => e.ports))) {
    const cidrs = outermost(entries.filter((e) => covers(e.ports, ports)).map((e) => e.cidr));
    if (cidrs.length === 0) continue;
    const last = boxes.at(-1);
    if (last && last.ports[1] + 1 === ports[0] && sameCidrs(last.cidrs, cidrs)) last.ports = [last.ports[0], ports[1]];
    else boxes.push({ ports, cidrs });
  }
  return boxes;
}

/** The pieces the interval ends cut the number line into, limited to pieces some interval covers; in order. */
function elementaryIntervals(intervals: readonly [number, number][]): [number, number][] {
  const cuts = [...new Set(intervals.flatMap(([lo, hi]) => [lo, hi + 1]))].sort((a, b) => a - b);
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const piece: [number, number] = [cuts[i]!, cuts[i + 1]! - 1];
    if (intervals.some((iv) => covers(iv, piece))) out.push(piece);
  }
  return out;
}

function covers(outer: readonly [number, number], inner: readonly [number, number]): boolean {
  return outer[0] <= inner[0] && inner[1] <= outer[1];
}

/** Blocks not inside another block of the list, sorted, without duplicates. */
function outermost(cidrs: readonly Cidr[]): Cidr[] {
  const sorted = [...cidrs].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : a.prefix - b.prefix));
  const out: Cidr[] = [];
  for (const c of sorted) {
    const last = out.at(-1);
    // Sorted by start, a block is inside some kept block only if it is inside the last kept one.
    if (last && last.first <= c.first && c.last <= last.last) continue;
    out.push(c);
  }
  return out;
}

function sameCidrs(a: readonly Cidr[], b: readonly Cidr[]): boolean {
  return a.length === b.length && a.every((c, i) => c.text === b[i]!.text);
}

/** nft text of one element: "10.0.0.0/8 . tcp . 443", "10.1.2.3 . 0-255 . 0-65535". */
export function formatElement(e: SetElement): string {
  const addr = e.cidr.prefix === 32 ? e.cidr.text.slice(0, -3) : e.cidr.text;
  const [plo, phi] = e.protos;
  const proto = plo === phi ? (plo === PROTO_TCP ? "tcp" : plo === PROTO_UDP ? "udp" : String(plo)) : `${plo}-${phi}`;
  const port = e.ports[0] === e.ports[1] ? String(e.ports[0]) : `${e.ports[0]}-${e.ports[1]}`;
  return `${addr} . ${proto} . ${port}`;
}
