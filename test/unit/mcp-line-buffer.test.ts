/** The sandbox transport's newline framing: split-invariant, bounded, linear. */
import { describe, expect, it } from "vitest";
import { LineBuffer, LineOverflowError } from "../../src/mcp/line-buffer.js";
import { prng } from "../helpers/prng.js";

const msg = (id: number) => ({ jsonrpc: "2.0" as const, id, result: { text: "é".repeat(id % 7) } });
const wire = (ids: number[]) => Buffer.from(ids.map((i) => `${JSON.stringify(msg(i))}\n`).join(""));

describe("LineBuffer", () => {
  it("yields the same messages however the stream is cut (inside UTF-8 characters too)", () => {
    const ids = Array.from({ length: 40 }, (_, i) => i);
    const bytes = wire(ids);
    const rand = prng(7);
    for (let round = 0; round < 50; round++) {
      const buf = new LineBuffer(1 << 20);
      const got: unknown[] = [];
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + Math.floor(rand() * 37);
        got.push(...buf.push(bytes.subarray(at, at + n)));
        at += n;
      }
      expect(got).toEqual(ids.map(msg));
    }
  });

  it("reports a malformed line as an error and keeps going; blank lines and CRLF are fine", () => {
    const buf = new LineBuffer(1024);
    const out = buf.push(Buffer.from(`not json\n\n${JSON.stringify(msg(1))}\r\n`));
    expect(out).toHaveLength(2);
    expect(out[0]).toBeInstanceOf(Error);
    expect(out[1]).toEqual(msg(1));
  });

  it("throws LineOverflowError once a line passes the limit, counting bytes across chunks", () => {
    const buf = new LineBuffer(100);
    expect(buf.push(Buffer.alloc(60, 0x61))).toEqual([]);
    expect(() => buf.push(Buffer.alloc(60, 0x61))).toThrow(LineOverflowError);
  });

  it("joins a 16 MiB line sent in 64 KiB chunks once (a quadratic buffer would copy ~2 GB)", () => {
    const big = JSON.stringify({ jsonrpc: "2.0", id: 1, result: { s: "x".repeat(16 * 1024 * 1024 - 64) } });
    const bytes = Buffer.from(`${big}\n`);
    const buf = new LineBuffer(32 * 1024 * 1024);
    const out: unknown[] = [];
    for (let at = 0; at < bytes.length; at += 65536) out.push(...buf.push(bytes.subarray(at, at + 65536)));
    expect(out).toHaveLength(1);
    expect((out[0] as { id: number }).id).toBe(1);
  });
});
