import { once } from "node:events";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { describe, expect, it } from "vitest";
import { MAX_CLIENT_HELLO, parseClientHello, type ClientHelloResult } from "../../src/policy/firewall/proxy-sni.js";

/** The first TLS record(s) a real Node TLS client sends, captured by a plain TCP server on loopback. */
async function captureHello(opts: ConnectionOptions): Promise<Buffer> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const got = new Promise<Buffer>((resolve) => {
    server.once("connection", (s: Socket) => {
      let buf = Buffer.alloc(0);
      s.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        // One record is the whole hello for Node's client; its length is in the 5-byte header.
        if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
          resolve(buf);
          s.destroy();
        }
      });
    });
  });
  const client = tlsConnect({ host: "127.0.0.1", port, ...opts });
  client.on("error", () => undefined);
  try {
    return await got;
  } finally {
    client.destroy();
    server.close();
    await once(server, "close");
  }
}

/** A TLS handshake record. */
function record(body: Buffer, type = 0x16): Buffer {
  const h = Buffer.from([type, 3, 1, 0, 0]);
  h.writeUInt16BE(body.length, 3);
  return Buffer.concat([h, body]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function ext(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), u16(data.length), data]);
}

/** A server_name extension with the given host_name entries (raw bytes allowed). */
function sniExt(...names: (string | Buffer)[]): Buffer {
  const entries = Buffer.concat(names.map((n) => {
    const b = typeof n === "string" ? Buffer.from(n, "latin1") : n;
    return Buffer.concat([Buffer.from([0]), u16(b.length), b]);
  }));
  return ext(0, Buffer.concat([u16(entries.length), entries]));
}

/** A complete, well-formed handshake message (header + ClientHello body) with these extensions. */
function hello(extensions: Buffer[] | undefined): Buffer {
  const parts = [Buffer.from([3, 3]), Buffer.alloc(32, 7), Buffer.from([0]), u16(2), Buffer.from([0x13, 0x01]), Buffer.from([1, 0])];
  if (extensions) {
    const all = Buffer.concat(extensions);
    parts.push(u16(all.length), all);
  }
  const body = Buffer.concat(parts);
  const head = Buffer.from([1, 0, 0, 0]);
  head.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([head, body]);
}

/** Split one handshake message over records of `size` bytes. */
function fragmented(message: Buffer, size: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < message.length; i += size) out.push(record(message.subarray(i, i + size)));
  return Buffer.concat(out);
}

describe("parseClientHello on real ClientHellos", () => {
  it("reads the SNI Node's TLS client sends (TLS 1.3 and 1.2)", async () => {
    const tls13 = await captureHello({ servername: "allowed.test" });
    expect(parseClientHello(tls13)).toEqual({ status: "ok", sni: "allowed.test" });
    const tls12 = await captureHello({ servername: "api.example.com", maxVersion: "TLSv1.2" });
    expect(parseClientHello(tls12)).toEqual({ status: "ok", sni: "api.example.com" });
  });

  it("reports no SNI when the client sends none (connecting to an IP)", async () => {
    const raw = await captureHello({});
    expect(parseClientHello(raw)).toEqual({ status: "ok", sni: undefined });
  });

  it("asks for more bytes on every prefix, with a `need` beyond what it has, then succeeds", async () => {
    const raw = await captureHello({ servername: "a.b.example.org" });
    for (let i = 0; i < raw.length; i++) {
      const r = parseClientHello(raw.subarray(0, i));
      expect(r.status, `prefix ${i}`).toBe("incomplete");
      if (r.status === "incomplete") expect(r.need).toBeGreaterThan(i);
    }
    expect(parseClientHello(raw)).toEqual({ status: "ok", sni: "a.b.example.org" });
  });

  it("reassembles a hello split over several records, and ignores bytes after it", async () => {
    const raw = await captureHello({ servername: "frag.test" });
    const message = raw.subarray(5, 5 + raw.readUInt16BE(3));
    expect(message.length).toBeLessThan(64 * 60);
    expect(parseClientHello(fragmented(message, 60))).toEqual({ status: "ok", sni: "frag.test" });
    expect(parseClientHello(Buffer.concat([fragmented(message, 100), Buffer.from("trailing bytes")]))).toEqual({ status: "ok", sni: "frag.test" });
  });

  it("never throws on random corruption of a real hello", async () => {
    const raw = await captureHello({ servername: "fuzz.test" });
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(raw);
      for (let k = 0; k <= rand(4); k++) b[rand(b.length)] = rand(256);
      const cut = rand(3) === 0 ? b.subarray(0, rand(b.length)) : b;
      const r: ClientHelloResult = parseClientHello(cut);
      seen.add(r.status);
      if (r.status === "ok" && r.sni !== undefined) expect(r.sni).toMatch(/^[\x21-\x7e]+$/);
    }
    expect(seen.has("invalid")).toBe(true);
  });
});

describe("parseClientHello on crafted input", () => {
  it("tells other protocols apart at the first bytes", () => {
    expect(parseClientHello(Buffer.from("GET / HTTP/1.1\r\n"))).toEqual({ status: "not-tls" });
    expect(parseClientHello(Buffer.from("SSH-2.0-x\r\n"))).toEqual({ status: "not-tls" });
    expect(parseClientHello(Buffer.from([0x16, 0x47]))).toEqual({ status: "not-tls" });
    expect(parseClientHello(Buffer.alloc(0))).toEqual({ status: "incomplete", need: 1 });
  });

  it("parses minimal hellos with and without extensions", () => {
    expect(parseClientHello(record(hello([sniExt("Mixed.Case.test")])))).toEqual({ status: "ok", sni: "mixed.case.test" });
    expect(parseClientHello(record(hello(undefined)))).toEqual({ status: "ok", sni: undefined });
    expect(parseClientHello(record(hello([ext(0x2b, Buffer.from([2, 3, 4]))])))).toEqual({ status: "ok", sni: undefined });
  });

  it("refuses ambiguous or unusable server names", () => {
    const invalid = (extensions: Buffer[]) => parseClientHello(record(hello(extensions))).status;
    expect(invalid([sniExt("a.test"), sniExt("b.test")])).toBe("invalid");
    expect(invalid([sniExt("a.test", "b.test")])).toBe("invalid");
    expect(invalid([sniExt("")])).toBe("invalid");
    expect(invalid([sniExt(Buffer.from("bücher.test"))])).toBe("invalid");
    expect(invalid([sniExt("a b.test")])).toBe("invalid");
  });

  it("refuses lengths that overrun their container", () => {
    const good = hello([sniExt("a.test")]);
    // The server_name list claims more bytes than its extension holds.
    const listLen = good.indexOf(Buffer.from("a.test", "latin1")) - 5;
    const bad = Buffer.from(good);
    bad.writeUInt16BE(0xfff0, listLen);
    expect(parseClientHello(record(bad)).status).toBe("invalid");
    // The hello claims more bytes than its record and then the stream ends: still only "incomplete".
    const long = Buffer.from(good);
    long.writeUIntBE(good.length, 1, 3);
    expect(parseClientHello(record(long)).status).toBe("incomplete");
    // Trailing garbage inside the hello body after the extensions.
    expect(parseClientHello(record(Buffer.concat([good, Buffer.from([0])]))).status).toBe("ok"); // outside the declared length: ignored
    const extra = Buffer.concat([good, Buffer.from([0])]);
    extra.writeUIntBE(good.length - 4 + 1, 1, 3);
    expect(parseClientHello(record(extra))).toEqual({ status: "invalid", reason: "extensions length" });
  });

  it("refuses oversized hellos and records, zero-length records and other record types", () => {
    const huge = Buffer.from([1, 0, 0, 0]);
    huge.writeUIntBE(MAX_CLIENT_HELLO + 1, 1, 3);
    expect(parseClientHello(record(Buffer.concat([huge, Buffer.alloc(10)]))).status).toBe("invalid");
    const bigRecord = Buffer.from([0x16, 3, 1, 0x40, 0x01]);
    expect(parseClientHello(bigRecord)).toEqual({ status: "invalid", reason: "record length 16385" });
    expect(parseClientHello(Buffer.from([0x16, 3, 1, 0, 0])).status).toBe("invalid");
    const m = hello([sniExt("a.test")]);
    expect(parseClientHello(Buffer.concat([record(m.subarray(0, 10)), record(m.subarray(10), 0x17)])).status).toBe("invalid");
    expect(parseClientHello(record(Buffer.from([2, 0, 0, 1, 0]))).status).toBe("invalid"); // a ServerHello
  });

  it("refuses a hello spread over too many tiny records", () => {
    const padded = hello([sniExt("a.test"), ext(0x15, Buffer.alloc(200))]);
    expect(padded.length).toBeLessThan(64 * 5);
    expect(parseClientHello(fragmented(padded, 5))).toEqual({ status: "ok", sni: "a.test" });
    expect(parseClientHello(fragmented(padded, 1)).status).toBe("invalid");
  });
});
