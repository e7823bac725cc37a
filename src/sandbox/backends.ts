/**
 * Backend selection by name: the one place that knows every backend. Each is
 * loaded on demand, so `luminaguard exec` with the namespace backend does not pay
 * for loading QEMU's or gVisor's code (CLI start-up is benchmarked).
 */
import type { Backend, BackendName } from "./types.js";
import type { MicrovmConfig } from "../config/schema.js";

export interface BackendOptions {
  /** Host uid sandboxes run as when LuminaGuard runs as root. */
  sandboxUid?: number | undefined;
  /**
   * One sandbox, then exit (the CLI's `exec`): the micro-VM backend cold-boots it
   * rather than booting a snapshot template that nothing else would use.
   */
  oneShot?: boolean;
  /** Lines of progress for long steps (building the guest image). */
  onProgress?: (line: string) => void;
  /** The config file's `microvm` section. */
  microvm?: MicrovmConfig;
}

export async function createBackend(name: BackendName, opts: BackendOptions = {}): Promise<Backend> {
  switch (name) {
    case "namespace": {
      const { NamespaceBackend } = await import("./namespace/backend.js");
      return new NamespaceBackend(opts.sandboxUid === undefined ? {} : { sandboxUid: opts.sandboxUid });
    }
    case "gvisor": {
      const { GvisorBackend } = await import("./gvisor/backend.js");
      return new GvisorBackend({ sandboxUid: opts.sandboxUid });
    }
    case "microvm": {
      const { MicrovmBackend } = await import("./microvm/backend.js");
      const vm = opts.microvm;
      return new MicrovmBackend({
        snapshots: !opts.oneShot,
        ...(vm ? { imageName: vm.image, prestarted: vm.prestarted, templateMaxAgeMs: vm.templateMaxAgeMinutes * 60_000 } : {}),
        ...(opts.sandboxUid === undefined ? {} : { sandboxUid: opts.sandboxUid }),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      });
    }
  }
}
