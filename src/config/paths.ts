import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Where LuminaGuard keeps per-sandbox scratch folders and compiled policy files.
 * LUMINAGUARD_RUNTIME_DIR overrides it (tests use this to stay inside their own temp folder).
 */
export function runtimeDir(): string {
  const uid = process.getuid?.() ?? 0;
  return process.env.LUMINAGUARD_RUNTIME_DIR ?? join(tmpdir(), `luminaguard-${uid}`);
}
