// The guest wire protocol: framing under arbitrary chunk boundaries, rejection of
// oversize and garbled frames, resync, and both ends' handling of bad input —
// the host client against a scripted peer, the agent's dispatcher in-process.
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { duplexPair, type Duplex } from "node:stream";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FrameDecoder,
  MAX_FRAME_BYTES,
  MAX_RESOLV_CONF,
  PROTOCOL_VERSION,
  ProtocolError,
  SYNC_MAGIC,
  encodeFrame,
  parseAgentMessage,
  parseHostMessage,
  type Frame,
  type Token,
} from "../../src/guest/protocol.js";
import { GuestClient } from "../../src/sandbox/agent-client.js";
import { SandboxError } from "../../src/sandbox/errors.js";
import type { Agent } from "../../src/guest/dispatcher.js";
import { CollectingLink, testAgent } from "../helpers/guest-agent.js";
import { prng } from "../helpers/prng.js";

type Item = { kind: "sync" } | { kind: "frame"; header: Record<string, unknown> & { type: string }; body: Buffer };

function randomItems(rand: () => number, n: number): Item[] {
  const int = (k: number): number => Math.floor(rand() * k);
  const items: Item[] = [];
  for (let i = 0; i < n; i++) {
    if (rand() < 0.1) {
      items.push({ kind: "sync" });
      continue;
    }
    // Bodies: mostly small, some empty, some large; bytes include 0xff (the marker's first byte).
    const size = rand() < 0.2 ? 0 : rand() < 0.9 ? int(300) : int(200_000);
    const body = Buffer.alloc(size);
    for (let j = 0; j < size; j++) body[j] = rand() < 0.05 ? 0xff : int(256);
    if (size > 16 && rand() < 0.3) SYNC_MAGIC.copy(body, int(size - SYNC_MAGIC.length)); // the marker inside a body is just data
    const text = Array.from({ length: int(20) }, () => String.fromCodePoint(rand() < 0.8 ? 32 + int(90) : 0x4e00 + int(500))).join("");
    items.push({ kind: "frame", header: { type: rand() < 0.5 ? "stdout" : "result", id: int(1e9), text, nested: { a: [1, "x", null] } }, body });
  }
  return items;
}

function encodeItems(items: Item[]): Buffer {
  return Buffer.concat(items.map((it) => (it.kind === "sync" ? SYNC_MAGIC : encodeFrame(it.header, it.body))));
}

/** Split `buf` at random points (including 1-byte pieces) and decode all of it. */
function decodeInPieces(buf: Buffer, rand: () => number, decoder = new FrameDecoder()): Token[] {
  const out: Token[] = [];
  let at = 0;
  while (at < buf.length) {
    const len = rand() < 0.3 ? 1 + Math.floor(rand() * 8) : 1 + Math.floor(rand() * 70_000);
    out.push(...decoder.push(buf.subarray(at, at + len)));
    at += len;
  }
  return out;
}

describe("framing", () => {
  it("round-trips random frames and sync markers under random chunk boundaries", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rand = prng(seed);
      const items = randomItems(rand, 1 + Math.floor(rand() * 30));
      const tokens = decodeInPieces(encodeItems(items), rand);
      expect(tokens.length, `seed ${seed}`).toBe(items.length);
      tokens.forEach((t, i) => {
        const want = items[i]!;
        expect(t.kind, `seed ${seed} item ${i}`).toBe(want.kind);
        if (t.kind === "frame" && want.kind === "frame") {
          expect(t.frame.header).toEqual(want.header);
          expect(t.frame.body.equals(want.body), `seed ${seed} item ${i} body`).toBe(true);
        }
      });
    }
  });

  it("keeps a partial frame until the rest arrives", () => {
    const frame = encodeFrame({ type: "ping", id: 1 }, Buffer.from("abc"));
    const d = new FrameDecoder();
    expect(d.push(frame.subarray(0, 3))).toEqual([]);
    expect(d.push(frame.subarray(3, frame.length - 1))).toEqual([]);
    expect(d.pendingBytes).toBe(frame.length - 1);
    const [t] = d.push(frame.subarray(frame.length - 1));
    expect(t).toEqual({ kind: "frame", frame: { header: { type: "ping", id: 1 }, body: Buffer.from("abc") } });
  });

  it("refuses to encode a frame over the limit", () => {
    expect(() => encodeFrame({ type: "data", id: 1, more: false }, new Uint8Array(MAX_FRAME_BYTES))).toThrow(ProtocolError);
    expect(encodeFrame({ type: "data", id: 1, more: false }, new Uint8Array(MAX_FRAME_BYTES - 100)).length).toBeLessThanOrEqual(MAX_FRAME_BYTES + 4);
  });

  it("rejects an oversize length before buffering it", () => {
    const d = new FrameDecoder();
    const len = Buffer.alloc(4);
    len.writeUInt32BE(MAX_FRAME_BYTES + 1);
    expect(() => d.push(len)).toThrow(/frame length/);
    const tiny = Buffer.alloc(4);
    tiny.writeUInt32BE(2);
    expect(() => new FrameDecoder().push(tiny)).toThrow(ProtocolError);
  });

  const payload = (header: Buffer, declared = header.length): Buffer => {
    const p = Buffer.alloc(8 + header.length);
    p.writeUInt32BE(4 + header.length, 0);
    p.writeUInt32BE(declared, 4);
    header.copy(p, 8);
    return p;
  };

  it.each([
    ["not JSON", payload(Buffer.from("{nope"))],
    ["an array", payload(Buffer.from("[1,2]"))],
    ["no string type", payload(Buffer.from('{"type":3}'))],
    ["a header longer than the payload", payload(Buffer.from('{"type":"x"}'), 999)],
    ["bytes that are not a frame nor the marker", Buffer.from([0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06])],
  ])("rejects a garbled frame: %s", (_name, bytes) => {
    const err = (() => {
      try {
        new FrameDecoder().push(bytes);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe("E_GUEST_PROTOCOL");
  });

  it("skips garbage up to the sync marker when asked to resync", () => {
    const rand = prng(7);
    for (let round = 0; round < 20; round++) {
      const garbage = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 500) }, () => Math.floor(rand() * 255)));
      const good = encodeFrame({ type: "ping", id: round });
      const d = new FrameDecoder({ awaitSync: true });
      const tokens = decodeInPieces(Buffer.concat([garbage, SYNC_MAGIC, good]), rand, d);
      expect(tokens).toEqual([{ kind: "sync" }, { kind: "frame", frame: { header: { type: "ping", id: round }, body: Buffer.alloc(0) } }]);
    }
    // After an error, resync() searches what followed the bad bytes.
    const d = new FrameDecoder();
    const bad = Buffer.concat([Buffer.from([0x7f, 0, 0, 0]), SYNC_MAGIC, encodeFrame({ type: "ping", id: 9 })]);
    expect(() => d.push(bad)).toThrow(ProtocolError);
    d.resync();
    expect(d.push(Buffer.alloc(0)).map((t) => t.kind)).toEqual(["sync", "frame"]);
  });
});

describe("header validation", () => {
  const h = (o: Record<string, unknown>): Frame["header"] => o as Frame["header"];
  it("accepts well-formed messages and rejects unknown types or bad fields", () => {
    expect(parseHostMessage(h({ type: "exec", id: 1, execId: "a", argv: ["true"], env: {}, cwd: "/", stdin: false })).type).toBe("exec");
    expect(() => parseHostMessage(h({ type: "frobnicate", id: 1 }))).toThrow(/Unknown message type/);
    expect(() => parseHostMessage(h({ type: "exec", id: 1, execId: "a", argv: "true", env: {}, cwd: "/", stdin: false }))).toThrow(/argv/);
    expect(() => parseHostMessage(h({ type: "toString", id: 1 }))).toThrow(/Unknown/);
    expect(() => parseHostMessage(h({ type: "configure", id: 1, confine: "chroot", uid: 1, gid: 1 }))).toThrow(/confine/);
    expect(() => parseAgentMessage(h({ type: "result", id: 1, ok: false }))).toThrow(/no error/);
    expect(parseAgentMessage(h({ type: "exit", execId: "x", exitCode: null, signal: "SIGKILL" })).type).toBe("exit");
  });

  it("takes only dotted-quad addresses and a prefix length for network: they end up on the guest's ip command line", () => {
    const net = (o: Record<string, unknown>) => h({ type: "network", id: 1, address: "10.208.0.2", prefixLength: 30, gateway: "10.208.0.1", resolvConf: "nameserver 10.0.0.53\n", ...o });
    expect(parseHostMessage(net({})).type).toBe("network");
    for (const bad of ["10.208.0.256", "10.208.0", "010.1.2.3", "10.1.2.3; reboot", "-1.2.3.4", "::1", 1]) {
      expect(() => parseHostMessage(net({ address: bad }))).toThrow(/address/);
      expect(() => parseHostMessage(net({ gateway: bad }))).toThrow(/gateway/);
    }
    expect(() => parseHostMessage(net({ prefixLength: 33 }))).toThrow(/prefixLength/);
    expect(() => parseHostMessage(net({ prefixLength: "30" }))).toThrow(/prefixLength/);
    expect(() => parseHostMessage(net({ resolvConf: "x".repeat(MAX_RESOLV_CONF + 1) }))).toThrow(/resolvConf/);
  });
});

/** A scripted agent on the other end of a duplex pair: it sees our frames and answers as told. */
function scriptedPeer(onFrame: (f: Frame, send: (buf: Buffer) => void) => void): { host: Duplex; peer: Duplex } {
  const [host, peer] = duplexPair();
  const d = new FrameDecoder();
  peer.on("data", (chunk: Buffer) => {
    for (const t of d.push(chunk)) if (t.kind === "frame") onFrame(t.frame, (b) => peer.write(b));
  });
  return { host, peer };
}

const hello = (id: number | undefined, version = PROTOCOL_VERSION, pid = 42): Buffer =>
  Buffer.concat([SYNC_MAGIC, encodeFrame({ type: "hello", version, agentVersion: "test", pid, bootId: "b", ...(id === undefined ? {} : { id }) })]);

describe("GuestClient against a scripted agent", () => {
  const clients: GuestClient[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  it("refuses an agent that speaks another protocol version", async () => {
    const { host } = scriptedPeer((f, send) => {
      if (f.header.type === "hello") send(hello(f.header.id as number, PROTOCOL_VERSION + 1));
    });
    const err = await GuestClient.connect(host, { helloTimeoutMs: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxError);
    expect((err as SandboxError).code).toBe("E_GUEST_PROTOCOL");
    expect((err as SandboxError).message).toMatch(/protocol version 2.*speaks 1/);
  });

  it("skips leftovers of an earlier conversation and waits for the hello that answers its own", async () => {
    const { host } = scriptedPeer((f, send) => {
      if (f.header.type !== "hello") return;
      // Half a frame, a stale greeting and a stale result, then our answer.
      const stale = encodeFrame({ type: "result", id: (f.header.id as number) + 1, ok: true });
      send(Buffer.concat([encodeFrame({ type: "stdout", execId: "old" }, Buffer.alloc(5000)).subarray(0, 700), hello(undefined), stale, hello(f.header.id as number)]));
    });
    const c = await GuestClient.connect(host, { helloTimeoutMs: 2000 });
    clients.push(c);
    expect(c.hello).toEqual({ version: PROTOCOL_VERSION, agentVersion: "test", pid: 42, bootId: "b" });
  });

  it("marks itself lost when a request goes unanswered, and rejects everything pending", async () => {
    const { host } = scriptedPeer((f, send) => {
      if (f.header.type === "hello") send(hello(f.header.id as number));
      // pings are never answered
    });
    const c = await GuestClient.connect(host, { requestTimeoutMs: 150 });
    clients.push(c);
    const proc = c.exec(["sleep", "1"], { env: {}, cwd: "/", stdin: false });
    const started = Date.now();
    await expect(c.ping()).rejects.toMatchObject({ code: "E_GUEST_LOST" });
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(proc.exited).rejects.toMatchObject({ code: "E_GUEST_LOST" });
    expect((await c.lost).code).toBe("E_GUEST_LOST");
    await expect(c.list("/workspace")).rejects.toMatchObject({ code: "E_GUEST_LOST" });
  });

  it("marks itself lost when the channel closes or the agent restarts", async () => {
    let peerSend: ((b: Buffer) => void) | undefined;
    const { host, peer } = scriptedPeer((f, send) => {
      peerSend = send;
      if (f.header.type === "hello") send(hello(f.header.id as number));
    });
    const c = await GuestClient.connect(host);
    clients.push(c);
    peerSend!(hello(undefined, PROTOCOL_VERSION, 43));
    expect((await c.lost).message).toMatch(/restarted/);

    const second = scriptedPeer((f, send) => {
      if (f.header.type === "hello") send(hello(f.header.id as number));
    });
    const c2 = await GuestClient.connect(second.host);
    clients.push(c2);
    second.peer.destroy();
    expect((await c2.lost).code).toBe("E_GUEST_LOST");
    peer.destroy();
  });
});

describe("agent dispatcher", () => {
  const dir = mkdtempSync(join(tmpdir(), "lg-guest-unit-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const agent = (): Agent => testAgent(dir, "unit");

  it("greets a new host, answers an unknown type and a bad version with error frames, and keeps serving", () => {
    const a = agent();
    const link = new CollectingLink();
    a.open(link);
    expect(link.got[0]).toEqual({ kind: "sync" });
    expect(link.headers()[0]).toMatchObject({ type: "hello", version: PROTOCOL_VERSION, agentVersion: "unit", pid: process.pid });
    a.data(link, Buffer.concat([SYNC_MAGIC, encodeFrame({ type: "frobnicate", id: 5 }), encodeFrame({ type: "hello", id: 6, version: 99 }), encodeFrame({ type: "ping", id: 7 })]));
    const h = link.headers();
    expect(h).toContainEqual(expect.objectContaining({ type: "error", code: "E_GUEST_PROTOCOL", id: 5 }));
    expect(h).toContainEqual(expect.objectContaining({ type: "error", code: "E_GUEST_PROTOCOL", id: 6, message: expect.stringMatching(/version 99/) }));
    expect(h).toContainEqual({ type: "result", id: 7, ok: true });
  });

  it("refuses to configure a network outside a micro-VM: eth0 would be its host's", async () => {
    const a = agent();
    const link = new CollectingLink();
    a.open(link);
    a.data(link, Buffer.concat([SYNC_MAGIC, encodeFrame({ type: "network", id: 4, address: "10.208.0.2", prefixLength: 30, gateway: "10.208.0.1", resolvConf: "" })]));
    await new Promise((r) => setTimeout(r, 10));
    expect(link.headers().at(-1)).toMatchObject({ type: "result", id: 4, ok: false, error: { code: "E_SANDBOX_START", message: expect.stringMatching(/does not run in a micro-VM/) } });
  });

  it("refuses to run a command before it was told how to confine it", () => {
    const a = agent();
    const link = new CollectingLink();
    a.open(link);
    a.data(link, Buffer.concat([SYNC_MAGIC, encodeFrame({ type: "exec", id: 3, execId: "x", argv: ["true"], env: {}, cwd: "/workspace", stdin: false })]));
    expect(link.headers().at(-1)).toMatchObject({ type: "result", id: 3, ok: false, error: { code: "E_SANDBOX_START", message: expect.stringMatching(/configure/) } });
  });

  it("answers garbled framing with an error and resumes after the host resyncs", () => {
    const a = agent();
    const link = new CollectingLink();
    a.open(link);
    a.data(link, Buffer.from([0x7f, 1, 2, 3, 4, 5, 6, 7]));
    expect(link.headers().at(-1)).toMatchObject({ type: "error", code: "E_GUEST_PROTOCOL" });
    expect(link.headers().at(-1)).not.toHaveProperty("id");
    a.data(link, encodeFrame({ type: "ping", id: 1 })); // ignored: the agent waits for the marker
    a.data(link, Buffer.concat([SYNC_MAGIC, encodeFrame({ type: "hello", id: 2, version: PROTOCOL_VERSION })]));
    const h = link.headers();
    expect(h).not.toContainEqual({ type: "result", id: 1, ok: true });
    expect(h.at(-1)).toMatchObject({ type: "hello", id: 2 });
  });
});
