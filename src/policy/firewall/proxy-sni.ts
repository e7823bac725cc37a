/**
 * A small parser that finds the server name (SNI) in the first bytes a TLS
 * client sends: the ClientHello. The egress proxy uses it to refuse a tunnel
 * opened to an allowed name that then asks the far end for another one
 * (domain fronting through a shared CDN front).
 *
 * The input is whatever the sandbox sent, so every length is checked against
 * the bytes actually present and against the enclosing length before it is
 * used. The hello may be split over several TLS records and several TCP
 * segments; the caller buffers and calls again until the result is no longer
 * "incomplete" (bounded by MAX_CLIENT_HELLO and its own timeout).
 */

/** TLS content type of handshake records. */
const CONTENT_HANDSHAKE = 0x16;
/** Handshake message type of a ClientHello. */
const HANDSHAKE_CLIENT_HELLO = 0x01;
/** Extension number of server_name (RFC 6066). */
const EXT_SERVER_NAME = 0x0000;
/** name_type of a DNS host name in the server_name list. */
const NAME_TYPE_HOST = 0x00;
/** TLSPlaintext.length may not exceed 2^14 (RFC 8446 §5.1). */
const MAX_RECORD = 16_384;
/**
 * The largest ClientHello we buffer. Real ones are 200 B to ~2 KiB (post-quantum
 * key shares included); 64 KiB leaves room for many PSK identities without
 * letting a sandbox make the proxy hold megabytes per connection.
 */
export const MAX_CLIENT_HELLO = 65_536;
/**
 * Real clients put a ClientHello in one record (a huge one in a few). Refusing
 * more than this keeps a sandbox that sends one-byte records from making each
 * re-parse walk thousands of them.
 */
const MAX_RECORDS = 64;
/** The most a caller ever needs to buffer to get a verdict (a full hello, one record past it, the headers). */
export const MAX_PEEK_BYTES = MAX_CLIENT_HELLO + MAX_RECORD + 5 * MAX_RECORDS;

/** What the first client bytes say. */
export type ClientHelloResult =
  /** Not enough bytes yet: call again once at least `need` bytes (from the start) are buffered. */
  | { status: "incomplete"; need: number }
  /** The bytes do not start a TLS handshake record: some other protocol. */
  | { status: "not-tls" }
  /** It starts like TLS but breaks the format (or exceeds our limits); `reason` is for logs. */
  | { status: "invalid"; reason: string }
  /** A complete ClientHello; `sni` is the host_name (lowercase ASCII) or undefined when absent. */
  | { status: "ok"; sni: string | undefined };

/** Parse the start of a TLS stream (possibly several records) for the ClientHello's SNI. */
export function parseClientHello(data: Uint8Array, maxHello: number = MAX_CLIENT_HELLO): ClientHelloResult {
  if (data.length === 0) return { status: "incomplete", need: 1 };
  if (data[0] !== CONTENT_HANDSHAKE) return { status: "not-tls" };
  // A record header is 5 bytes; the major version of every TLS (and SSL 3) record is 3.
  if (data.length >= 2 && data[1] !== 0x03) return { status: "not-tls" };

  const message = reassemble(data, maxHello);
  if (message.status !== "ok") return message;
  return parseHandshake(message.bytes);
}

type Reassembled = { status: "ok"; bytes: Uint8Array } | Exclude<ClientHelloResult, { status: "ok" }>;

/** Join handshake-record fragments until the first handshake message is complete. */
function reassemble(data: Uint8Array, maxHello: number): Reassembled {
  const fragments: Uint8Array[] = [];
  let have = 0;
  let need: number | undefined; // 4-byte handshake header + body, once the header is known
  let off = 0;
  while (true) {
    if (fragments.length >= MAX_RECORDS) return { status: "invalid", reason: `ClientHello split over more than ${MAX_RECORDS} records` };
    if (data.length - off < 5) return { status: "incomplete", need: off + 5 };
    if (data[off] !== CONTENT_HANDSHAKE) return { status: "invalid", reason: `record type ${data[off]} before the ClientHello was complete` };
    if (data[off + 1] !== 0x03) return { status: "invalid", reason: "record version is not TLS" };
    const len = u16(data, off + 3);
    // Zero-length handshake fragments are forbidden (RFC 8446 §5.1) and would let a client stall us for free.
    if (len === 0 || len > MAX_RECORD) return { status: "invalid", reason: `record length ${len}` };
    if (data.length - off - 5 < len) return { status: "incomplete", need: off + 5 + len };
    fragments.push(data.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (need === undefined && have >= 4) {
      const head = concat(fragments, 4);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return { status: "invalid", reason: `first handshake message is type ${head[0]}, not ClientHello` };
      need = 4 + ((head[1]! << 16) | (head[2]! << 8) | head[3]!);
      if (need > maxHello) return { status: "invalid", reason: `ClientHello of ${need} bytes exceeds the ${maxHello}-byte limit` };
    }
    if (need !== undefined && have >= need) return { status: "ok", bytes: concat(fragments, need).subarray(4) };
  }
}

/** Parse a ClientHello body (after the 4-byte handshake header). */
function parseHandshake(body: Uint8Array): ClientHelloResult {
  const r = new Reader(body);
  // client_version(2) random(32)
  if (!r.skip(2 + 32)) return bad("short hello");
  const sessionId = r.vector(1);
  if (!sessionId || sessionId.length > 32) return bad("session id");
  const ciphers = r.vector(2);
  if (!ciphers || ciphers.length < 2 || ciphers.length % 2 !== 0) return bad("cipher suites");
  const compression = r.vector(1);
  if (!compression || compression.length < 1) return bad("compression methods");
  // SSL 3 / early TLS hellos may end here: no extensions, so no SNI.
  if (r.remaining === 0) return { status: "ok", sni: undefined };
  const extensions = r.vector(2);
  if (!extensions || r.remaining !== 0) return bad("extensions length");

  const ex = new Reader(extensions);
  let sni: string | undefined;
  let seen = false;
  while (ex.remaining > 0) {
    const type = ex.u16();
    const data = ex.vector(2);
    if (type === undefined || data === undefined) return bad("extension header");
    if (type !== EXT_SERVER_NAME) continue;
    // Two server_name extensions could make us check one name while the server uses the other.
    if (seen) return bad("duplicate server_name extension");
    seen = true;
    const name = parseServerName(data);
    if (typeof name !== "string" && name !== undefined) return name;
    sni = name;
  }
  return { status: "ok", sni };
}

/** The host_name of a server_name extension body; undefined for an empty list. */
function parseServerName(data: Uint8Array): string | undefined | ClientHelloResult {
  const r = new Reader(data);
  const list = r.vector(2);
  if (!list || r.remaining !== 0) return bad("server_name list length");
  const l = new Reader(list);
  let host: string | undefined;
  while (l.remaining > 0) {
    const type = l.u8();
    const name = l.vector(2);
    if (type === undefined || name === undefined) return bad("server_name entry");
    if (type !== NAME_TYPE_HOST) continue;
    // RFC 6066 allows one name per type; more than one is ambiguous, so refuse rather than guess.
    if (host !== undefined) return bad("more than one host_name");
    if (name.length === 0) return bad("empty host_name");
    // host_name is ASCII (A-labels); anything else is not a name we could check.
    for (const b of name) if (b < 0x21 || b > 0x7e) return bad("host_name is not printable ASCII");
    host = Buffer.from(name.buffer, name.byteOffset, name.length).toString("latin1").toLowerCase();
  }
  return host;
}

function bad(reason: string): ClientHelloResult {
  return { status: "invalid", reason };
}

function u16(b: Uint8Array, off: number): number {
  return (b[off]! << 8) | b[off + 1]!;
}

function concat(parts: Uint8Array[], upTo: number): Uint8Array {
  const out = new Uint8Array(Math.min(upTo, parts.reduce((n, p) => n + p.length, 0)));
  let off = 0;
  for (const p of parts) {
    if (off >= out.length) break;
    const take = Math.min(p.length, out.length - off);
    out.set(p.subarray(0, take), off);
    off += take;
  }
  return out;
}

/** A cursor that returns undefined instead of reading past the end. */
class Reader {
  private off = 0;
  constructor(private readonly b: Uint8Array) {}

  get remaining(): number {
    return this.b.length - this.off;
  }

  skip(n: number): boolean {
    if (this.remaining < n) return false;
    this.off += n;
    return true;
  }

  u8(): number | undefined {
    return this.remaining >= 1 ? this.b[this.off++] : undefined;
  }

  u16(): number | undefined {
    if (this.remaining < 2) return undefined;
    const v = u16(this.b, this.off);
    this.off += 2;
    return v;
  }

  /** A length-prefixed vector (`lenBytes` = 1 or 2). */
  vector(lenBytes: 1 | 2): Uint8Array | undefined {
    const len = lenBytes === 1 ? this.u8() : this.u16();
    if (len === undefined || this.remaining < len) return undefined;
    const v = this.b.subarray(this.off, this.off + len);
    this.off += len;
    return v;
  }
}
