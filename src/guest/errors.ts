/**
 * The agent's own typed failure: a wire error code (the host maps it to its
 * SandboxError code) and a message that says what happened in the guest.
 */
import type { WireError, WireErrorCode } from "./protocol.js";

export class AgentError extends Error {
  constructor(
    readonly code: WireErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "AgentError";
  }

  toWire(): WireError {
    return { code: this.code, message: this.message };
  }
}

/** Any thrown value as a wire error; unexpected ones become `fallback` with their message. */
export function toWireError(err: unknown, fallback: WireErrorCode = "E_FILE_IO"): WireError {
  if (err instanceof AgentError) return err.toWire();
  const message = err instanceof Error ? err.message : String(err);
  return { code: fallback, message: `guest agent: ${message}` };
}

/** The errno code of a Node system error ("ENOENT"), if any. */
export function errnoOf(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && typeof (err as { code?: unknown }).code === "string" ? (err as { code: string }).code : undefined;
}
