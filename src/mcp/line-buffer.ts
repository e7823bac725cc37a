/**
 * Newline framing for MCP's stdio transport, linear in the bytes received. The
 * SDK's ReadBuffer concatenates its whole buffer on every chunk, so a hostile
 * server sending one 16 MiB line in 64 KiB pipe reads costs ~2 GB of copying;
 * here chunks wait in a list and are joined once, when their line ends.
 * Parsing stays the SDK's (deserializeMessage).
 */
import { deserializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

export class LineOverflowError extends Error {}

export class LineBuffer {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxLineBytes: number) {}

  /**
   * Add a chunk; returns the complete messages in it (or errors for lines that do not parse).
   * Throws LineOverflowError when a line grows past the limit (nothing after it can be trusted).
   */
  push(chunk: Buffer): (JSONRPCMessage | Error)[] {
    const out: (JSONRPCMessage | Error)[] = [];
    let rest = chunk;
    for (let nl = rest.indexOf(0x0a); nl !== -1; nl = rest.indexOf(0x0a)) {
      this.add(rest.subarray(0, nl));
      const line = (this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size)).toString("utf8").replace(/\r$/, "");
      this.parts = [];
      this.size = 0;
      if (line.trim() !== "") {
        try {
          out.push(deserializeMessage(line));
        } catch (err) {
          out.push(err as Error);
        }
      }
      rest = rest.subarray(nl + 1);
    }
    if (rest.length > 0) this.add(rest);
    return out;
  }

  private add(piece: Buffer): void {
    this.size += piece.length;
    if (this.size > this.maxLineBytes) {
      this.parts = [];
      this.size = 0;
      throw new LineOverflowError(`a line over ${this.maxLineBytes} bytes`);
    }
    if (piece.length > 0) this.parts.push(piece);
  }
}
