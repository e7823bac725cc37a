/**
 * A parser for server-sent events as the daemon writes them (`id:`, `event:`,
 * `data:` lines, a blank line ends an event, `:` lines are comments such as the
 * heartbeat). Written by hand because it is twenty lines and the CLI must not
 * load a browser-shaped EventSource polyfill to read its own daemon.
 */

/** One event from the stream; `data` is the parsed JSON body (or `{text}` when it is not JSON). */
export interface SseEvent {
  id: number | undefined;
  type: string;
  data: Record<string, unknown>;
}

/** Feeds chunks in, calls `onEvent` for each complete event; keeps a partial line between chunks. */
export class SseParser {
  #buffer = "";
  #id: string | undefined;
  #type = "";
  #data: string[] = [];
  readonly #decoder = new TextDecoder();

  constructor(private readonly onEvent: (e: SseEvent) => void) {}

  /** Add bytes from the stream. */
  push(chunk: Uint8Array): void {
    this.#buffer += this.#decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = this.#buffer.search(/\r\n|\n|\r/)) >= 0) {
      const line = this.#buffer.slice(0, nl);
      const eol = this.#buffer.startsWith("\r\n", nl) ? 2 : 1;
      // A lone \r at the end of a chunk may be the first half of \r\n: wait for more.
      if (eol === 1 && this.#buffer[nl] === "\r" && nl === this.#buffer.length - 1) break;
      this.#buffer = this.#buffer.slice(nl + eol);
      this.#line(line);
    }
  }

  #line(line: string): void {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return; // a comment: the connect note or a heartbeat
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.#type = value;
    else if (field === "data") this.#data.push(value);
    else if (field === "id") this.#id = value;
    // "retry" and unknown fields are ignored, as the SSE spec says.
  }

  #dispatch(): void {
    const type = this.#type || "message";
    const text = this.#data.join("\n");
    const hadData = this.#data.length > 0;
    this.#type = "";
    this.#data = [];
    if (!hadData) return;
    let data: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(text);
      data = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { value: parsed };
    } catch {
      data = { text };
    }
    const id = this.#id === undefined || this.#id === "" ? undefined : Number(this.#id);
    this.onEvent({ id: Number.isFinite(id) ? id : undefined, type, data });
  }
}
