/**
 * An MCP stdio transport whose server process runs inside a sandbox: the SDK's
 * newline-delimited JSON-RPC framing (ReadBuffer / serializeMessage) carried over
 * `Sandbox.exec` streams instead of a host child process.
 */
import { serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import type { ExecHandle, ExecResult, Sandbox } from "../sandbox/types.js";
import { LineBuffer } from "./line-buffer.js";

export interface SandboxStdioOptions {
  argv: string[];
  env?: Record<string, string> | undefined;
  cwd?: string | undefined;
  /** Largest single message accepted from the server; a bigger one ends the connection (it cannot be parsed). */
  maxMessageBytes: number;
}

/** How much of the server's stderr is kept to explain a crash. */
const STDERR_TAIL = 4096;

export class SandboxStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private handle: ExecHandle | undefined;
  private readonly buffer: LineBuffer;
  private stderr = "";
  private ended: ExecResult | Error | undefined;
  private closedByUs = false;
  private closeFired = false;
  /** Why the transport ended, when it was not our close(): shown in the crash error. */
  endReason: string | undefined;

  constructor(
    private readonly sandbox: Sandbox,
    private readonly opts: SandboxStdioOptions,
  ) {
    this.buffer = new LineBuffer(opts.maxMessageBytes);
  }

  async start(): Promise<void> {
    if (this.handle) throw new Error("SandboxStdioTransport already started");
    this.handle = this.sandbox.exec(this.opts.argv, { env: this.opts.env, cwd: this.opts.cwd });
    const stdoutDone = this.pumpStdout(this.handle);
    void this.pumpStderr(this.handle);
    // Deliver what the server wrote before it ended (its last answers) before reporting the end.
    this.handle.wait().then(
      (res) => stdoutDone.then(() => this.finish(res)),
      (err: Error) => stdoutDone.then(() => this.finish(err)),
    );
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (!this.handle || this.ended) throw new Error("the MCP server's process has ended");
    await this.handle.write(serializeMessage(message));
  }

  async close(): Promise<void> {
    this.closedByUs = true;
    if (this.handle && !this.ended) {
      this.handle.closeStdin();
      this.handle.kill("SIGKILL");
      await this.handle.wait().catch(() => undefined);
    }
    this.fireClose();
  }

  /** The last few KiB the server wrote to stderr (its own explanation of a crash). */
  stderrTail(): string {
    return this.stderr.trim();
  }

  private async pumpStdout(handle: ExecHandle): Promise<void> {
    try {
      for await (const chunk of handle.stdout) {
        let messages;
        try {
          messages = this.buffer.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        } catch (err) {
          // A line longer than the limit cannot be parsed or skipped safely: end the server.
          this.endReason = `it sent a message larger than ${this.opts.maxMessageBytes} bytes`;
          this.onerror?.(err as Error);
          handle.kill("SIGKILL");
          return;
        }
        // A malformed line (a stray console.log) is reported and skipped, as the SDK's stdio client does.
        for (const m of messages) {
          if (m instanceof Error) this.onerror?.(m);
          else this.onmessage?.(m);
        }
      }
    } catch (err) {
      this.onerror?.(err as Error);
    }
  }

  private async pumpStderr(handle: ExecHandle): Promise<void> {
    try {
      for await (const chunk of handle.stderr) {
        this.stderr = (this.stderr + Buffer.from(chunk).toString("utf8")).slice(-STDERR_TAIL);
      }
    } catch {
      // stderr is diagnostics only.
    }
  }

  private finish(res: ExecResult | Error): void {
    this.ended = res;
    if (!this.closedByUs && this.endReason === undefined) {
      const ending = res instanceof Error ? res.message : res.signal ? `its process was killed by ${res.signal}` : `its process exited with code ${res.exitCode}`;
      // A server that dies on ENOSPC usually says so only in its own words; name the limit to raise.
      const disk = !(res instanceof Error) && res.diskFull ? " with the sandbox's disk full (raise sandbox.limits.disk for this server)" : "";
      this.endReason = `${ending}${disk}`;
    }
    this.fireClose();
  }

  private fireClose(): void {
    if (this.closeFired) return;
    this.closeFired = true;
    this.onclose?.();
  }
}
