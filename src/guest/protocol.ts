/**
 * The wire protocol between the host and the guest agent, shared by both ends.
 * Imports only Node built-ins: it is bundled into the guest agent, and the host
 * side must not drag guest code in either.
 *
 * Framing: u32 BE payload length, then the payload = u32 BE header length +
 * UTF-8 JSON header + raw body (stdout chunks and file contents travel raw, not
 * base64). A payload is at most MAX_FRAME_BYTES; file contents larger than
 * FILE_CHUNK_BYTES are split over one first frame and `data` frames that carry
 * `more: true` until the last one, so any file the size limit admits fits.
 *
 * Resync: virtio-serial has no notion of connections, and a write of a frame
 * larger than the driver's 32 KiB per call can be cut in half when the host goes
 * away (the rest then reaches the next host). So every new conversation starts
 * with SYNC_MAGIC: a sender writes it before its first frame, and a receiver
 * that must (re)synchronise discards bytes until it finds it. Its first 4 bytes
 * read as a length far over the limit, so it never looks like a frame.
 */

/** Bumped on any incompatible change; the host refuses an agent that speaks another version. */
export const PROTOCOL_VERSION = 1;
/** Largest payload of one frame (header length field + header + body). */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** Largest JSON header (a directory listing travels in one). */
export const MAX_HEADER_BYTES = MAX_FRAME_BYTES - 4;
/** File contents are sent in pieces of at most this many bytes. */
export const FILE_CHUNK_BYTES = 1024 * 1024;
/** Largest /etc/resolv.conf a `network` request may carry (it is a few nameserver lines). */
export const MAX_RESOLV_CONF = 16 * 1024;
/** Starts every conversation; see the file header. */
export const SYNC_MAGIC: Buffer = Buffer.from([0xff, 0x4c, 0x47, 0x53, 0x59, 0x4e, 0x43, 0x0a]); // "\xffLGSYNC\n"

/** Error codes carried in `result` and `error` frames (a subset of the host's SandboxErrorCode). */
export type WireErrorCode =
  | "E_GUEST_PROTOCOL"
  | "E_EXEC_INVALID"
  | "E_SANDBOX_START"
  | "E_SANDBOX_DESTROYED"
  | "E_FILE_NOT_FOUND"
  | "E_FILE_TOO_LARGE"
  | "E_FILE_PATH"
  | "E_FILE_IO"
  | "E_CGROUP";

export interface WireError {
  code: WireErrorCode;
  message: string;
}

export type Confinement = "bwrap" | "none";
export type FileType = "file" | "dir" | "symlink" | "other";

// ---- host → agent -------------------------------------------------------------

export interface HelloRequest { type: "hello"; id: number; version: number }
export interface PingRequest { type: "ping"; id: number }
/** body: fresh entropy bytes for the guest kernel's RNG. */
export interface ReseedRequest { type: "reseed"; id: number; timeMs: number; hostname: string }
/** body: compiled seccomp BPF program (empty: none). */
export interface ConfigureRequest {
  type: "configure";
  id: number;
  confine: Confinement;
  uid: number;
  gid: number;
  limits?: { memoryBytes: number; pids: number };
  /** bwrap only: give each command its own network namespace (only loopback). Default false: the VM is the network boundary. */
  unshareNet?: boolean;
  /** bwrap only: start commands through one confined spawner per sandbox (default true; false: one bwrap per command). */
  spawner?: boolean;
}
export interface ExecRequest { type: "exec"; id: number; execId: string; argv: string[]; env: Record<string, string>; cwd: string; stdin: boolean }
/** body: bytes for the command's stdin. Answered once the command's pipe took them. */
export interface StdinRequest { type: "stdin"; id: number; execId: string }
export interface StdinEofRequest { type: "stdin-eof"; id: number; execId: string }
export interface SignalRequest { type: "signal"; id: number; execId: string; signal: string }
export interface ReadRequest { type: "read"; id: number; path: string; maxBytes: number }
/** body: the first piece of the contents; `more` means `data` frames with the same id follow. */
export interface WriteRequest { type: "write"; id: number; path: string; maxBytes: number; more?: boolean }
export interface ListRequest { type: "list"; id: number; path: string }
export interface RemoveRequest { type: "remove"; id: number; path: string; recursive: boolean }
export interface ProcessesRequest { type: "processes"; id: number }
/**
 * Micro-VMs with network: give the guest's NIC (eth0) this address, a default
 * route through `gateway`, and /etc/resolv.conf. Repeatable (it replaces what
 * an earlier call set). Refused by agents that do not run in a VM.
 */
export interface NetworkRequest { type: "network"; id: number; address: string; prefixLength: number; gateway: string; resolvConf: string }

export type HostRequest =
  | HelloRequest
  | PingRequest
  | ReseedRequest
  | ConfigureRequest
  | ExecRequest
  | StdinRequest
  | StdinEofRequest
  | SignalRequest
  | ReadRequest
  | WriteRequest
  | ListRequest
  | RemoveRequest
  | ProcessesRequest
  | NetworkRequest;

/** A continuation piece of a body (write contents host → agent, read contents agent → host). */
export interface DataFrame { type: "data"; id: number; more: boolean }

export type HostMessage = HostRequest | DataFrame;

// ---- agent → host -------------------------------------------------------------

export interface HelloMessage {
  type: "hello";
  version: number;
  agentVersion: string;
  pid: number;
  bootId: string;
  /** Set when this hello answers a hello request. */
  id?: number;
}
/** Extra fields of a successful result, by request. read: `more` + body; list: `entries`; processes: `processes`; exec: `pid`. */
export interface ResultOk {
  type: "result";
  id: number;
  ok: true;
  more?: boolean;
  pid?: number;
  entries?: FileEntryWire[];
  processes?: { pid: number; cmdline: string }[];
}
export interface ResultErr { type: "result"; id: number; ok: false; error: WireError }
export interface OutputMessage { type: "stdout" | "stderr"; execId: string }
export interface ExitMessage { type: "exit"; execId: string; exitCode: number | null; signal: string | null; oom?: boolean; pidsLimit?: boolean }
/** A frame the agent could not act on (unknown type, bad version, garbled header). */
export interface ErrorMessage { type: "error"; code: WireErrorCode; message: string; id?: number }

export interface FileEntryWire { name: string; type: FileType; size: number }

export type AgentMessage = HelloMessage | ResultOk | ResultErr | OutputMessage | ExitMessage | ErrorMessage | DataFrame;

// ---- errors -------------------------------------------------------------------

/** A frame or header that breaks the protocol. Both ends turn it into their own typed errors. */
export class ProtocolError extends Error {
  readonly code = "E_GUEST_PROTOCOL";
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

// ---- framing ------------------------------------------------------------------

/** One frame: its parsed JSON header (an object with a string `type`) and its raw body. */
export interface Frame {
  header: { type: string } & Record<string, unknown>;
  body: Buffer;
}

/** Encode one frame. Throws ProtocolError when it would exceed MAX_FRAME_BYTES. */
export function encodeFrame(header: object, body?: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const bodyLen = body?.byteLength ?? 0;
  const payload = 4 + json.length + bodyLen;
  if (json.length > MAX_HEADER_BYTES || payload > MAX_FRAME_BYTES) {
    throw new ProtocolError(`A frame of ${payload} bytes (header ${json.length}) is over the protocol limit of ${MAX_FRAME_BYTES}; split the body.`);
  }
  const out = Buffer.allocUnsafe(4 + payload);
  out.writeUInt32BE(payload, 0);
  out.writeUInt32BE(json.length, 4);
  json.copy(out, 8);
  if (body && bodyLen > 0) out.set(body, 8 + json.length);
  return out;
}

/** What the decoder yields: a frame, or the sync marker that starts a new conversation. */
export type Token = { kind: "frame"; frame: Frame } | { kind: "sync" };

/**
 * Streaming decoder: push chunks with any boundaries, get whole frames back.
 * Garbage, an oversize length or a bad header throws ProtocolError; the caller
 * decides whether to drop the channel or call `resync()` and wait for SYNC_MAGIC.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private seeking: boolean;

  constructor(opts: { awaitSync?: boolean } = {}) {
    this.seeking = opts.awaitSync ?? false;
  }

  /** True while bytes are discarded until SYNC_MAGIC. */
  get awaitingSync(): boolean {
    return this.seeking;
  }

  /** Bytes held that do not form a whole frame yet. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** Discard bytes until the next SYNC_MAGIC (bytes already buffered are searched too). */
  resync(): void {
    this.seeking = true;
  }

  /** Forget buffered bytes; the next byte starts a frame (or SYNC_MAGIC). */
  reset(): void {
    this.chunks = [];
    this.buffered = 0;
    this.seeking = false;
  }

  push(chunk: Uint8Array): Token[] {
    if (chunk.byteLength > 0) {
      this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.buffered += chunk.byteLength;
    }
    const out: Token[] = [];
    for (;;) {
      if (this.seeking && !this.seek()) break;
      if (this.buffered < 4) break;
      const head = this.peek(SYNC_MAGIC.length < this.buffered ? SYNC_MAGIC.length : this.buffered);
      if (head[0] === SYNC_MAGIC[0]) {
        if (head.length < SYNC_MAGIC.length) break;
        if (!head.equals(SYNC_MAGIC)) this.fail("garbage where a frame should start");
        this.take(SYNC_MAGIC.length);
        out.push({ kind: "sync" });
        continue;
      }
      const payload = head.readUInt32BE(0);
      if (payload < 4 || payload > MAX_FRAME_BYTES) this.fail(`frame length ${payload} is outside 4..${MAX_FRAME_BYTES}`);
      if (this.buffered < 4 + payload) break;
      const raw = this.take(4 + payload);
      out.push({ kind: "frame", frame: parsePayload(raw.subarray(4)) });
    }
    return out;
  }

  private fail(why: string): never {
    // Drop the byte that started the bad frame, so a caller that resyncs searches what follows it.
    this.take(1);
    throw new ProtocolError(`Garbled frame from the other end: ${why}.`);
  }

  /** Drop bytes up to SYNC_MAGIC (kept in the buffer); false when it is not there yet. */
  private seek(): boolean {
    const all = this.take(this.buffered);
    const at = all.indexOf(SYNC_MAGIC);
    if (at < 0) {
      // Keep a tail that may be the start of the marker.
      const keep = all.subarray(Math.max(0, all.length - (SYNC_MAGIC.length - 1)));
      this.chunks = keep.length > 0 ? [Buffer.from(keep)] : [];
      this.buffered = keep.length;
      return false;
    }
    const rest = all.subarray(at);
    this.chunks = [rest];
    this.buffered = rest.length;
    this.seeking = false;
    return true;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    const merged = Buffer.concat(this.chunks);
    this.chunks = [merged];
    return merged.subarray(0, n);
  }

  private take(n: number): Buffer {
    let out: Buffer;
    const first = this.chunks[0];
    if (first && first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const merged = Buffer.concat(this.chunks);
      out = merged.subarray(0, n);
      this.chunks = merged.length > n ? [merged.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }
}

function parsePayload(payload: Buffer): Frame {
  const headerLen = payload.readUInt32BE(0);
  if (headerLen < 2 || headerLen > MAX_HEADER_BYTES || 4 + headerLen > payload.length) {
    throw new ProtocolError(`Garbled frame from the other end: header length ${headerLen} does not fit the ${payload.length}-byte payload.`);
  }
  let header: unknown;
  try {
    header = JSON.parse(payload.toString("utf8", 4, 4 + headerLen));
  } catch {
    throw new ProtocolError("Garbled frame from the other end: the header is not JSON.");
  }
  if (typeof header !== "object" || header === null || Array.isArray(header) || typeof (header as { type?: unknown }).type !== "string") {
    throw new ProtocolError("Garbled frame from the other end: the header is not an object with a string `type`.");
  }
  // Copy the body: the payload's buffer may be a slice of a larger reused chunk.
  return { header: header as Frame["header"], body: Buffer.from(payload.subarray(4 + headerLen)) };
}

// ---- header validation ----------------------------------------------------------

type Check = (v: unknown) => boolean;
const str: Check = (v) => typeof v === "string";
const bool: Check = (v) => typeof v === "boolean";
const uint: Check = (v) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const num: Check = (v) => typeof v === "number" && Number.isFinite(v);
const opt = (c: Check): Check => (v) => v === undefined || c(v);
const strArray: Check = (v) => Array.isArray(v) && v.every((x) => typeof x === "string");
const strRecord: Check = (v) => typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string");
const limits: Check = (v) => typeof v === "object" && v !== null && uint((v as Record<string, unknown>).memoryBytes) && uint((v as Record<string, unknown>).pids);
/** Dotted-quad IPv4 only: the values end up on `ip`'s command line in the guest. */
const ipv4: Check = (v) => typeof v === "string" && /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(v) && v.split(".").every((o) => Number(o) <= 255 && String(Number(o)) === o);
const oneOf = (...values: string[]): Check => (v) => typeof v === "string" && values.includes(v);

const HOST_FIELDS: Record<HostMessage["type"], Record<string, Check>> = {
  hello: { id: uint, version: num },
  ping: { id: uint },
  reseed: { id: uint, timeMs: num, hostname: str },
  configure: { id: uint, confine: oneOf("bwrap", "none"), uid: uint, gid: uint, limits: opt(limits), unshareNet: opt(bool), spawner: opt(bool) },
  exec: { id: uint, execId: str, argv: strArray, env: strRecord, cwd: str, stdin: bool },
  stdin: { id: uint, execId: str },
  "stdin-eof": { id: uint, execId: str },
  signal: { id: uint, execId: str, signal: str },
  read: { id: uint, path: str, maxBytes: uint },
  write: { id: uint, path: str, maxBytes: uint, more: opt(bool) },
  list: { id: uint, path: str },
  remove: { id: uint, path: str, recursive: bool },
  processes: { id: uint },
  network: { id: uint, address: ipv4, prefixLength: (v) => uint(v) && (v as number) <= 32, gateway: ipv4, resolvConf: (v) => str(v) && (v as string).length <= MAX_RESOLV_CONF },
  data: { id: uint, more: bool },
};

const entries: Check = (v) =>
  Array.isArray(v) && v.every((e) => typeof e === "object" && e !== null && str(e.name) && oneOf("file", "dir", "symlink", "other")(e.type) && uint(e.size));
const procs: Check = (v) => Array.isArray(v) && v.every((p) => typeof p === "object" && p !== null && uint(p.pid) && str(p.cmdline));
const wireError: Check = (v) => typeof v === "object" && v !== null && str((v as Record<string, unknown>).code) && str((v as Record<string, unknown>).message);
const nullable = (c: Check): Check => (v) => v === null || c(v);

const AGENT_FIELDS: Record<AgentMessage["type"], Record<string, Check>> = {
  hello: { version: num, agentVersion: str, pid: uint, bootId: str, id: opt(uint) },
  result: { id: uint, ok: bool, more: opt(bool), pid: opt(uint), entries: opt(entries), processes: opt(procs), error: opt(wireError) },
  stdout: { execId: str },
  stderr: { execId: str },
  exit: { execId: str, exitCode: nullable(num), signal: nullable(str), oom: opt(bool), pidsLimit: opt(bool) },
  error: { code: str, message: str, id: opt(uint) },
  data: { id: uint, more: bool },
};

function check<T>(table: Record<string, Record<string, Check>>, header: Frame["header"], from: string): T {
  const fields = Object.hasOwn(table, header.type) ? table[header.type] : undefined;
  if (!fields) throw new ProtocolError(`Unknown message type ${JSON.stringify(header.type)} from the ${from}.`);
  for (const [name, ok] of Object.entries(fields)) {
    if (!ok(header[name])) throw new ProtocolError(`Bad field \`${name}\` in a ${header.type} message from the ${from}.`);
  }
  if (header.type === "result" && header.ok === false && !wireError(header.error)) {
    throw new ProtocolError("A failed result from the agent carries no error.");
  }
  return header as T;
}

/** Validate a header the agent received. Throws ProtocolError for an unknown type or a bad field. */
export function parseHostMessage(header: Frame["header"]): HostMessage {
  return check<HostMessage>(HOST_FIELDS, header, "host");
}

/** Validate a header the host received. Throws ProtocolError for an unknown type or a bad field. */
export function parseAgentMessage(header: Frame["header"]): AgentMessage {
  return check<AgentMessage>(AGENT_FIELDS, header, "guest agent");
}

/** The request id of a header, if it has a usable one (to address an error reply). */
export function requestIdOf(header: Record<string, unknown>): number | undefined {
  return uint(header.id) ? (header.id as number) : undefined;
}
