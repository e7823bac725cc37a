/** The agent's typed errors (E_AGENT_*): the message says what to do. */
import { LuminaError } from "../errors.js";

export type AgentErrorCode =
  | "E_AGENT_NO_PROVIDER"
  | "E_AGENT_PROVIDER"
  | "E_AGENT_AUTH"
  | "E_AGENT_RATE_LIMITED"
  | "E_AGENT_REPLAY"
  | "E_AGENT_TRANSCRIPT"
  | "E_AGENT_UNKNOWN_TASK";

export class AgentError extends LuminaError {
  declare readonly code: AgentErrorCode;

  constructor(code: AgentErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(code, message, options);
  }
}
