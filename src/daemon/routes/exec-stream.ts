/**
 * A sandbox command's output as NDJSON: `{stream, data, encoding}` lines as
 * output arrives, then one `{exit, signal, durationMs, error?}` line. Text that
 * is valid UTF-8 is sent as is; anything else as base64, so binary output
 * survives. A client that disconnects kills the command.
 */
import { LuminaError } from "../../errors.js";
import type { ExecHandle } from "../../sandbox/types.js";

const fatal = new TextDecoder("utf-8", { fatal: true });

/** One chunk as a JSON field pair; `carry` holds a multi-byte character cut at the chunk's end. */
export function encodeChunk(chunk: Uint8Array, carry: { bytes: Uint8Array }): { data: string; encoding: "utf8" | "base64" } | undefined {
  const all = carry.bytes.length > 0 ? concat(carry.bytes, chunk) : chunk;
  const cut = incompleteTail(all);
  const body = all.subarray(0, all.length - cut);
  carry.bytes = all.slice(all.length - cut);
  if (body.length === 0) return undefined;
  try {
    return { data: fatal.decode(body), encoding: "utf8" };
  } catch {
    return { data: Buffer.from(body).toString("base64"), encoding: "base64" };
  }
}

/** Bytes at the end that start a UTF-8 sequence not finished yet (0-3). */
function incompleteTail(b: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, b.length); back++) {
    const byte = b[b.length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: look further back
    const need = (byte & 0xe0) === 0xc0 ? 2 : (byte & 0xf0) === 0xe0 ? 3 : (byte & 0xf8) === 0xf0 ? 4 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The NDJSON body for a running command; `abort` kills it when the client goes away. */
export function execStream(handle: ExecHandle, abort: AbortController): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  const started = performance.now();
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      let open = true;
      const send = (obj: Record<string, unknown>): void => {
        if (!open) return;
        try {
          controller.enqueue(enc.encode(`${JSON.stringify(obj)}\n`));
        } catch {
          open = false; // the client went away; the abort kills the command
        }
      };
      const pump = async (stream: "stdout" | "stderr", it: AsyncIterable<Uint8Array>): Promise<void> => {
        const carry = { bytes: new Uint8Array(0) };
        for await (const chunk of it) {
          const out = encodeChunk(chunk, carry);
          if (out) send({ stream, ...out });
        }
        if (carry.bytes.length > 0) send({ stream, data: Buffer.from(carry.bytes).toString("base64"), encoding: "base64" });
      };
      try {
        // Both streams and the exit together: waiting on one first can deadlock on a full pipe.
        const [, , result] = await Promise.all([pump("stdout", handle.stdout), pump("stderr", handle.stderr), handle.wait()]);
        send({ exit: result.exitCode, signal: result.signal, durationMs: result.durationMs });
      } catch (err) {
        const result = (err as LuminaError).details?.result as { exitCode?: number | null; signal?: string | null; durationMs?: number } | undefined;
        const code = err instanceof LuminaError ? err.code : "E_EXEC_FAILED";
        send({ exit: result?.exitCode ?? null, signal: result?.signal ?? null, durationMs: result?.durationMs ?? performance.now() - started, error: { code, message: (err as Error).message } });
      }
      if (open) controller.close();
    },
    cancel() {
      abort.abort();
    },
  });
}
