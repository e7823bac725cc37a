// Bad input to the guest wire protocol: random splits of valid streams, truncated,
// oversized, wrong-version and garbage frames, resync. The decoder must yield the
// same tokens however the bytes are cut, and reject anything else with a
// ProtocolError (E_GUEST_PROTOCOL), never another exception or a hang.
import { afterAll, describe, expect, it } from "vitest";
import { duplexPair } from "node:stream";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FrameDecoder,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  ProtocolError,
  SYNC_MAGIC,
  encodeFrame,
  parseAgentMessage,
  parseHostMessage,
  type Token,
} from "../../src/guest/protocol.js";
import type { Agent } from "../../src/guest/dispatcher.js";
import { CollectingLink, testAgent } from "../helpers/guest-agent.js";
import { GuestClient } from "../../src/sandbox/agent-client.js";
import { fc, runs } from "./settings.js";

type Item = { kind: "sync" } | { kind: "frame"; header: Record<string, unknown> & { type: string }; body: Uint8Array };

const header = fc.record({
  type: fc.string({ minLength: 1, maxLength: 12 }),
  id: fc.nat(),
  text: fc.string({ unit: "grapheme", maxLength: 30 }),
  extra: fc.jsonValue({ maxDepth: 2 }),
});
// Bodies include 0xff (the marker's first byte) and, sometimes, the whole marker: inside a body it is data.
const body = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.tuple(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 })).map(([a, b]) => Buffer.concat([a, SYNC_MAGIC, b])),
);
const item: fc.Arbitrary<Item> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: "sync" as const }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("frame" as const), header, body }) },
);

const encode = (items: Item[]): Buffer => Buffer.concat(items.map((i) => (i.kind === "sync" ? SYNC_MAGIC : encodeFrame(i.header, i.body))));

/** Cut `buf` at the given points (sorted, deduplicated) and decode piece by piece. */
function decodeCut(buf: Buffer, cuts: number[], decoder = new FrameDecoder()): Token[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Token[] = [];
  let at = 0;
  for (const p of [...points, buf.length]) {
    out.push(...decoder.push(buf.subarray(at, p)));
    at = p;
  }
  return out;
}

const plain = (tokens: Token[]): unknown[] => tokens.map((t) => (t.kind === "sync" ? "sync" : { h: t.frame.header, b: Buffer.from(t.frame.body).toString("hex") }));

/** Push `bytes`; on a ProtocolError resync and go on with what is left, as the agent does. */
function decodeHostile(bytes: Uint8Array, cuts: number[]): { tokens: Token[]; errors: number; decoder: FrameDecoder } {
  const decoder = new FrameDecoder();
  const tokens: Token[] = [];
  let errors = 0;
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let at = 0;
  for (const p of [...points, bytes.length]) {
    let chunk: Uint8Array = bytes.subarray(at, p);
    at = p;
    // Each error drops at least one byte, so this loop ends; the bound catches a decoder that stops dropping.
    for (let guard = 0; guard <= bytes.length + 1; guard++) {
      try {
        tokens.push(...decoder.push(chunk));
        break;
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError);
        expect((err as ProtocolError).code).toBe("E_GUEST_PROTOCOL");
        errors++;
        decoder.resync();
        chunk = new Uint8Array(0);
      }
    }
  }
  return { tokens, errors, decoder };
}

describe("guest protocol decoder under bad input", () => {
  it("is split-invariant: any cut of a valid stream decodes to the same tokens", () => {
    fc.assert(
      fc.property(fc.array(item, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), (items, cuts) => {
        const buf = encode(items);
        const whole = new FrameDecoder().push(buf);
        const cut = decodeCut(buf, cuts);
        expect(plain(cut)).toEqual(plain(whole));
        expect(whole.length).toBe(items.length);
      }),
    );
  });

  it("holds a truncated frame without error and finishes it when the rest comes", () => {
    fc.assert(
      fc.property(header, body, fc.nat(), (h, b, at) => {
        const frame = encodeFrame(h, b);
        const cut = at % frame.length;
        const d = new FrameDecoder();
        expect(d.push(frame.subarray(0, cut))).toEqual([]);
        expect(d.pendingBytes).toBe(cut);
        const rest = d.push(frame.subarray(cut));
        expect(rest).toHaveLength(1);
        expect(d.pendingBytes).toBe(0);
      }),
    );
  });

  it("rejects an oversized or undersized length from its 4 bytes alone, before buffering the payload", () => {
    const bad = fc.oneof(fc.integer({ min: MAX_FRAME_BYTES + 1, max: 0xfeffffff }), fc.integer({ min: 0, max: 3 }));
    fc.assert(
      fc.property(bad, (len) => {
        const head = Buffer.alloc(4);
        head.writeUInt32BE(len, 0);
        expect(() => new FrameDecoder().push(head)).toThrow(ProtocolError);
      }),
    );
  });

  it("refuses to encode a frame over the limit with a ProtocolError", () => {
    fc.assert(
      fc.property(fc.integer({ min: MAX_FRAME_BYTES - 8, max: MAX_FRAME_BYTES + 64 }), (size) => {
        const h = { type: "data", id: 1, more: false };
        const room = MAX_FRAME_BYTES - 4 - JSON.stringify(h).length;
        const body = new Uint8Array(size);
        if (size <= room) expect(encodeFrame(h, body).length).toBe(4 + 4 + JSON.stringify(h).length + size);
        else expect(() => encodeFrame(h, body)).toThrow(ProtocolError);
      }),
      { numRuns: runs(40) },
    );
  });

  it("rejects garbage only with ProtocolError, never hangs, and frames after a sync marker decode again", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.array(item, { maxLength: 5 }), fc.array(fc.nat(), { maxLength: 20 }), (garbage, items, cuts) => {
        const valid = encode(items);
        const stream = Buffer.concat([garbage, SYNC_MAGIC, valid]);
        const { tokens, decoder } = decodeHostile(stream, cuts);
        // Whatever the garbage did, the marker and the frames after it come out last, unchanged.
        const tail = plain(new FrameDecoder().push(Buffer.concat([SYNC_MAGIC, valid])));
        expect(plain(tokens).slice(-tail.length)).toEqual(tail);
        expect(decoder.pendingBytes).toBe(0);
      }),
    );
  });

  it("a decoder waiting for the marker skips everything before it, including valid-looking frames", () => {
    fc.assert(
      fc.property(fc.array(item, { maxLength: 4 }), fc.array(item, { maxLength: 4 }), fc.array(fc.nat(), { maxLength: 20 }), (before, after, cuts) => {
        // Frames before the marker whose bodies hold the marker would resync there: keep those out.
        const pre = encode(before.filter((i) => i.kind === "frame"));
        fc.pre(pre.indexOf(SYNC_MAGIC) < 0);
        const tokens = decodeCut(Buffer.concat([pre, SYNC_MAGIC, encode(after)]), cuts, new FrameDecoder({ awaitSync: true }));
        expect(plain(tokens)).toEqual(plain(new FrameDecoder().push(Buffer.concat([SYNC_MAGIC, encode(after)]))));
      }),
    );
  });
});

describe("header validation under bad input", () => {
  const types = fc.constantFrom("hello", "ping", "reseed", "configure", "exec", "stdin", "stdin-eof", "signal", "read", "write", "list", "remove", "processes", "network", "data", "result", "stdout", "stderr", "exit", "error", "__proto__", "constructor", "toString");
  const randomHeader = fc.tuple(fc.oneof(types, fc.string()), fc.dictionary(fc.constantFrom("id", "version", "execId", "argv", "env", "path", "ok", "error", "entries", "more", "address", "limits", "code", "message"), fc.anything())).map(([type, fields]) => ({ ...fields, type }));

  it("either accepts a header or throws ProtocolError, from both ends", () => {
    fc.assert(
      fc.property(randomHeader, (h) => {
        for (const parse of [parseHostMessage, parseAgentMessage]) {
          try {
            expect(parse(h).type).toBe(h.type);
          } catch (err) {
            expect(err).toBeInstanceOf(ProtocolError);
          }
        }
      }),
    );
  });

  it("rejects JSON that is not an object with a string type inside a frame", () => {
    const notHeader = fc.jsonValue().filter((v) => typeof v !== "object" || v === null || Array.isArray(v) || typeof (v as { type?: unknown }).type !== "string");
    fc.assert(
      fc.property(notHeader, (v) => {
        const json = Buffer.from(JSON.stringify(v) ?? "null");
        const payload = Buffer.alloc(8 + json.length);
        payload.writeUInt32BE(4 + json.length, 0);
        payload.writeUInt32BE(json.length, 4);
        json.copy(payload, 8);
        expect(() => new FrameDecoder().push(payload)).toThrow(ProtocolError);
      }),
    );
  });
});

describe("guest agent dispatcher under bad input", () => {
  const dir = mkdtempSync(join(tmpdir(), "lg-fuzz-guest-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const agent = (): Agent => testAgent(dir, "fuzz");
  // Only requests without side effects on this host: the agent runs here in-process, not in a VM.
  const safeType = fc.constantFrom("hello", "ping", "data", "stdin", "stdin-eof", "processes", "frobnicate", "result", "");

  it("answers wrong versions, unknown types, bad fields and garbage with error frames and keeps serving", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.tuple(safeType, fc.dictionary(fc.constantFrom("id", "version", "execId", "more"), fc.anything())).map(([type, f]) => encodeFrame({ ...f, type }))), { maxLength: 8 }),
        fc.integer().filter((v) => v !== PROTOCOL_VERSION),
        (chunks, version) => {
          const a = agent();
          const link = new CollectingLink();
          a.open(link);
          for (const c of chunks) a.data(link, Buffer.from(c)); // must not throw
          a.data(link, Buffer.concat([SYNC_MAGIC, encodeFrame({ type: "hello", id: 1, version }), encodeFrame({ type: "ping", id: 2 })]));
          const h = link.headers();
          expect(h).toContainEqual(expect.objectContaining({ type: "error", code: "E_GUEST_PROTOCOL", id: 1 }));
          expect(h.at(-1)).toEqual({ type: "result", id: 2, ok: true });
        },
      ),
      { numRuns: runs(150) },
    );
  });
});

describe("host client under bad input while it waits for the agent's hello", () => {
  it("skips leftovers that break framing, even when the hello follows in the same chunk", async () => {
    // After a marker, leftovers whose first 4 bytes read as a length over the limit (found by the
    // dispatcher property: the bytes after the error were kept until the next chunk, so a hello in
    // the same chunk waited for the hello timeout).
    const leftovers = fc.tuple(fc.integer({ min: 1, max: 0xfe }), fc.uint8Array({ minLength: 3, maxLength: 200 })).map(([first, rest]) => Buffer.concat([Buffer.from([first]), rest]));
    await fc.assert(
      fc.asyncProperty(leftovers, async (junk) => {
        const [host, peer] = duplexPair();
        const d = new FrameDecoder();
        peer.on("data", (chunk: Buffer) => {
          for (const t of d.push(chunk)) {
            if (t.kind !== "frame" || t.frame.header.type !== "hello") continue;
            const hello = encodeFrame({ type: "hello", version: PROTOCOL_VERSION, agentVersion: "fuzz", pid: 7, bootId: "b", id: t.frame.header.id });
            peer.write(Buffer.concat([SYNC_MAGIC, junk, SYNC_MAGIC, hello]));
          }
        });
        const c = await GuestClient.connect(host, { helloTimeoutMs: 5000 });
        try {
          expect(c.hello.agentVersion).toBe("fuzz");
        } finally {
          c.close();
          peer.destroy();
        }
      }),
      { numRuns: runs(60) },
    );
  });
});
