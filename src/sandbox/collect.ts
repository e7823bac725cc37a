import type { ExecHandle, ExecResult } from "./types.js";

export interface Collected {
  stdout: Buffer;
  stderr: Buffer;
  result: ExecResult;
  /** True when stdout went past `maxBytes` and the command was killed. */
  truncated: boolean;
}

async function drain(stream: AsyncIterable<Uint8Array>, maxBytes: number, onOverflow: () => void): Promise<{ data: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of stream) {
    if (truncated) continue; // keep reading so the pipe never blocks the process
    size += chunk.byteLength;
    if (size > maxBytes) {
      truncated = true;
      chunks.push(Buffer.from(chunk).subarray(0, chunk.byteLength - (size - maxBytes)));
      onOverflow();
      continue;
    }
    chunks.push(Buffer.from(chunk));
  }
  return { data: Buffer.concat(chunks), truncated };
}

/**
 * Read both streams to the end and wait for the exit, concurrently (reading after
 * wait() could deadlock on a full pipe). Output past `maxBytes` kills the command.
 */
export async function collect(handle: ExecHandle, opts: { maxBytes?: number } = {}): Promise<Collected> {
  const max = opts.maxBytes ?? 64 * 1024 * 1024;
  const kill = (): void => handle.kill("SIGKILL");
  const [out, err, result] = await Promise.all([drain(handle.stdout, max, kill), drain(handle.stderr, max, kill), handle.wait()]);
  return { stdout: out.data, stderr: err.data, result, truncated: out.truncated || err.truncated };
}
