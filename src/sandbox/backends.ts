/** Backend selection by name: the one place that knows every backend. */
import type { Backend, BackendName } from "./types.js";
import { SandboxError } from "./errors.js";
import { NamespaceBackend } from "./namespace/backend.js";
import { GvisorBackend } from "./gvisor/backend.js";

export interface BackendOptions {
  /** Host uid sandboxes run as when LuminaGuard runs as root. */
  sandboxUid?: number | undefined;
}

/** The backend for a name; backends not built yet fail with a clear message. */
export function createBackend(name: BackendName, opts: BackendOptions = {}): Backend {
  switch (name) {
    case "namespace":
      return new NamespaceBackend(opts.sandboxUid === undefined ? {} : { sandboxUid: opts.sandboxUid });
    case "gvisor":
      return new GvisorBackend({ sandboxUid: opts.sandboxUid });
    case "microvm":
      throw new SandboxError("E_BACKEND_UNAVAILABLE", `The ${name} backend is not part of this build yet; use --backend namespace.`);
  }
}
