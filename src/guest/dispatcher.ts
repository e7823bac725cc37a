/**
 * The agent's brain: one host at a time, whose frames it decodes and answers.
 *
 * A new host (a new link, the port coming alive again, or SYNC_MAGIC from the
 * same link) starts a new session: the previous host's commands are killed
 * (their output has nowhere to go) and the host is greeted with SYNC_MAGIC +
 * hello. What `configure` and `reseed` set is the guest's, not the session's,
 * and stays. A frame the agent cannot act on is answered with an `error` frame;
 * after garbled framing the agent discards input until the host resyncs.
 */
import { readFileSync } from "node:fs";
import {
  FILE_CHUNK_BYTES,
  FrameDecoder,
  PROTOCOL_VERSION,
  ProtocolError,
  SYNC_MAGIC,
  encodeFrame,
  parseHostMessage,
  requestIdOf,
  type ConfigureRequest,
  type Frame,
  type HostMessage,
  type WireErrorCode,
} from "./protocol.js";
import { AgentError, toWireError } from "./errors.js";
import { HIGH_WATER_BYTES, type Link, type LinkHandler } from "./link.js";
import { ExecTable, type OutputSink } from "./exec.js";
import { GuestFiles, type FileAreas } from "./files.js";
import { prepareAreas, writeConfinementFiles, type ExecSettings } from "./confine.js";
import { SandboxCgroup } from "./cgroup.js";
import { listProcesses } from "./procs.js";
import { reseedGuest, type ReseedOptions } from "./reseed.js";
import { configureNetwork, type GuestNetOptions } from "./network.js";

export interface AgentOptions {
  agentVersion: string;
  areas: FileAreas;
  /** Private folder for the seccomp program and passwd/group files (never bound into a sandbox). */
  stateDir: string;
  reseed: ReseedOptions;
  /** The NIC `network` requests configure; without it (not in a VM) they are refused. */
  network?: GuestNetOptions;
  log(msg: string): void;
}

/** A write whose contents span several frames, being collected. */
interface PendingWrite {
  path: string;
  maxBytes: number;
  chunks: Buffer[];
  size: number;
  /** Set once the write failed early; later pieces are dropped, one error is sent at the end. */
  failed?: AgentError;
}

export class Agent implements LinkHandler, OutputSink {
  private link: Link | undefined;
  private decoder = new FrameDecoder();
  private readonly execs: ExecTable;
  private readonly files: GuestFiles;
  private settings: ExecSettings;
  private cgroups: SandboxCgroup | undefined;
  private writes = new Map<number, PendingWrite>();
  private readonly bootId: string;
  /** Set by the first configure; exec is refused before it. */
  private configured = false;
  /** Bumped per new host, so work that outlives its host stops sending. */
  private session = 0;

  constructor(private readonly opts: AgentOptions) {
    this.execs = new ExecTable(this, opts.areas, opts.reseed.helper, opts.log);
    this.files = new GuestFiles(opts.areas, () => (process.getuid?.() === 0 && this.settings.uid !== 0 ? { uid: this.settings.uid, gid: this.settings.gid } : undefined));
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    this.settings = { confine: "none", uid, gid, seccompFile: undefined, unshareNet: false, hostname: "luminaguard", passwdFile: "", groupFile: "" };
    this.bootId = readBootId();
  }

  // ---- LinkHandler ----

  open(link: Link): void {
    if (this.link && this.link !== link) this.link.close();
    this.link = link;
    this.newSession();
    this.greet();
  }

  close(link: Link): void {
    if (this.link !== link) return;
    this.link = undefined;
    this.newSession();
  }

  data(link: Link, chunk: Buffer): void {
    if (this.link !== link) return;
    let tokens;
    try {
      tokens = this.decoder.push(chunk);
    } catch (err) {
      this.send({ type: "error", code: "E_GUEST_PROTOCOL", message: `${(err as Error).message} Resend SYNC_MAGIC and hello.` });
      this.decoder.resync();
      // Frames decoded before the garbage are lost too; the host must start over anyway.
      // But the rest of this chunk may already hold the host's marker and hello: decode it now.
      if (chunk.byteLength > 0) this.data(link, Buffer.alloc(0));
      return;
    }
    for (const t of tokens) {
      if (t.kind === "sync") this.newSession();
      else this.handle(t.frame);
    }
  }

  // ---- OutputSink ----

  send(header: object, body?: Uint8Array): void {
    this.link?.write(encodeFrame(header, body));
  }

  congested(): boolean {
    return (this.link?.backlog ?? 0) > HIGH_WATER_BYTES;
  }

  drained(): Promise<void> {
    return this.link?.drained() ?? Promise.resolve();
  }

  /** Kill every command (the agent is going away). */
  stop(): void {
    this.execs.killAll();
  }

  // ---- sessions ----

  private newSession(): void {
    this.session++;
    if (this.execs.size > 0) this.opts.log(`new host: killing ${this.execs.size} command(s) of the previous one`);
    this.execs.killAll();
    this.writes.clear();
    this.decoder = new FrameDecoder();
  }

  private greet(id?: number): void {
    this.link?.write(SYNC_MAGIC);
    this.send({ type: "hello", version: PROTOCOL_VERSION, agentVersion: this.opts.agentVersion, pid: process.pid, bootId: this.bootId, ...(id === undefined ? {} : { id }) });
  }

  // ---- requests ----

  private handle(frame: Frame): void {
    let msg: HostMessage;
    try {
      msg = parseHostMessage(frame.header);
    } catch (err) {
      const id = requestIdOf(frame.header);
      this.send({ type: "error", code: "E_GUEST_PROTOCOL", message: (err as ProtocolError).message, ...(id === undefined ? {} : { id }) });
      return;
    }
    // Answers to a host that has left since would reach the next one: drop them.
    const session = this.session;
    const ok = (extra: object = {}, body?: Uint8Array): void => {
      if (this.session === session) this.send({ type: "result", id: (msg as { id: number }).id, ok: true, ...extra }, body);
    };
    const fail = (err: unknown, fallback: WireErrorCode = "E_FILE_IO"): void => {
      if (this.session === session) this.send({ type: "result", id: (msg as { id: number }).id, ok: false, error: toWireError(err, fallback) });
    };
    const run = (p: Promise<void>, fallback?: WireErrorCode): void => {
      p.catch((err: unknown) => fail(err, fallback));
    };

    switch (msg.type) {
      case "hello":
        if (msg.version !== PROTOCOL_VERSION) {
          this.send({ type: "error", code: "E_GUEST_PROTOCOL", message: `The host speaks protocol version ${msg.version}; this agent speaks ${PROTOCOL_VERSION}. Rebuild the guest image with this LuminaGuard (luminaguard image build --force).`, id: msg.id });
          return;
        }
        this.greet(msg.id);
        return;
      case "ping":
        ok();
        return;
      case "reseed":
        run(reseedGuest(this.opts.reseed, { entropy: frame.body, timeMs: msg.timeMs, hostname: msg.hostname }).then(() => {
          this.settings.hostname = msg.hostname;
          ok();
        }), "E_SANDBOX_START");
        return;
      case "configure":
        try {
          this.configure(msg, frame.body);
          ok();
        } catch (err) {
          fail(err, "E_SANDBOX_START");
        }
        return;
      case "exec":
        try {
          // Until the host says how, a command would run as the agent (root, unconfined): refuse.
          if (!this.configured) throw new AgentError("E_SANDBOX_START", "The guest agent has not been configured yet; send configure (confinement, uid) before exec.");
          const pid = this.execs.start(msg, this.settings, this.cgroups);
          ok(pid === undefined ? {} : { pid });
        } catch (err) {
          fail(err, "E_SANDBOX_START");
        }
        return;
      case "stdin":
        run(this.execs.stdin(msg.execId, frame.body).then(() => ok()), "E_SANDBOX_DESTROYED");
        return;
      case "stdin-eof":
        this.execs.closeStdin(msg.execId);
        ok();
        return;
      case "signal":
        try {
          this.execs.signal(msg.execId, msg.signal);
          ok();
        } catch (err) {
          fail(err, "E_EXEC_INVALID");
        }
        return;
      case "read":
        run(this.files.read(msg.path, msg.maxBytes).then((data) => this.sendChunked(msg.id, data, session)));
        return;
      case "write":
        this.writes.set(msg.id, { path: msg.path, maxBytes: msg.maxBytes, chunks: [], size: 0 });
        this.writePiece(msg.id, frame.body, msg.more ?? false);
        return;
      case "data":
        this.writePiece(msg.id, frame.body, msg.more);
        return;
      case "list":
        run(
          this.files.list(msg.path).then((entries) => {
            try {
              ok({ entries });
            } catch (err) {
              if (!(err instanceof ProtocolError)) throw err;
              throw new AgentError("E_FILE_IO", `${msg.path} has too many entries (${entries.length}) to list in one answer; list a subfolder, or run ls through exec.`);
            }
          }),
        );
        return;
      case "remove":
        run(this.files.remove(msg.path, msg.recursive).then(() => ok()));
        return;
      case "network":
        run(configureNetwork(this.opts.network ?? { device: undefined }, msg).then(() => ok()), "E_SANDBOX_START");
        return;
      case "processes":
        try {
          ok({ processes: listProcesses() });
        } catch (err) {
          fail(err);
        }
        return;
    }
  }

  private configure(msg: ConfigureRequest, seccomp: Buffer): void {
    if (msg.confine === "bwrap" && msg.uid === 0) {
      throw new AgentError("E_EXEC_INVALID", "Refusing to confine commands as uid 0; configure an unprivileged uid (65534).");
    }
    const files = writeConfinementFiles(this.opts.stateDir, { uid: msg.uid, gid: msg.gid, seccomp });
    prepareAreas(this.opts.areas, msg.uid, msg.gid);
    if (msg.limits) {
      if (this.cgroups) this.cgroups.apply(msg.limits);
      else {
        try {
          this.cgroups = SandboxCgroup.setup(msg.limits);
        } catch (err) {
          // Best effort, as the brief of this backend says: the VM's own RAM and our pids still bound a sandbox.
          this.opts.log(`limits not applied: ${(err as Error).message}`);
        }
      }
    }
    this.settings = { ...this.settings, confine: msg.confine, uid: msg.uid, gid: msg.gid, unshareNet: msg.unshareNet ?? false, ...files };
    this.configured = true;
    // Spawner (one confined launcher per sandbox, spawner.ts) unless the host asks for one bwrap per command.
    this.execs.configure(this.settings, this.cgroups, msg.spawner ?? true);
  }

  /** Collect a write's pieces; write the file after the last one. */
  private writePiece(id: number, body: Buffer, more: boolean): void {
    const w = this.writes.get(id);
    if (!w) {
      if (!more) this.send({ type: "result", id, ok: false, error: { code: "E_GUEST_PROTOCOL", message: `A data frame for request ${id}, which is not a write in progress.` } });
      return;
    }
    if (!w.failed) {
      w.size += body.length;
      if (w.size > w.maxBytes) {
        w.failed = new AgentError("E_FILE_TOO_LARGE", `${w.path} would be over the sandbox's ${w.maxBytes}-byte file limit; raise maxFileBytes in the sandbox spec or move the data another way.`);
        w.chunks = [];
      } else w.chunks.push(body);
    }
    if (more) return;
    this.writes.delete(id);
    const session = this.session;
    const fail = (err: unknown): void => {
      if (this.session === session) this.send({ type: "result", id, ok: false, error: toWireError(err) });
    };
    if (w.failed) {
      fail(w.failed);
      return;
    }
    this.files.write(w.path, w.chunks.length === 1 ? w.chunks[0]! : Buffer.concat(w.chunks), w.maxBytes).then(
      () => {
        if (this.session === session) this.send({ type: "result", id, ok: true });
      },
      fail,
    );
  }

  /** A read's contents: the result frame with the first piece, `data` frames with the rest, pacing on the link. */
  private async sendChunked(id: number, data: Buffer, session: number): Promise<void> {
    if (this.session !== session) return;
    let at = Math.min(FILE_CHUNK_BYTES, data.length);
    this.send({ type: "result", id, ok: true, more: at < data.length }, data.subarray(0, at));
    while (at < data.length) {
      if (this.congested()) await this.drained();
      if (this.session !== session) return; // that host left; the rest is stale
      const end = Math.min(at + FILE_CHUNK_BYTES, data.length);
      this.send({ type: "data", id, more: end < data.length }, data.subarray(at, end));
      at = end;
    }
  }
}

function readBootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "unknown";
  }
}
