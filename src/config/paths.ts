import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Where LuminaGuard keeps per-sandbox scratch folders and compiled policy files.
 * LUMINAGUARD_RUNTIME_DIR overrides it (tests use this to stay inside their own temp folder).
 */
export function runtimeDir(): string {
  const uid = process.getuid?.() ?? 0;
  return process.env.LUMINAGUARD_RUNTIME_DIR ?? join(tmpdir(), `luminaguard-${uid}`);
}

/**
 * Where built guest images (kernel, initrd, root file system) and their download cache live.
 * LUMINAGUARD_IMAGES_DIR overrides it; else $XDG_CACHE_HOME/luminaguard/images, else
 * ~/.cache/luminaguard/images. images/build.sh resolves the same default.
 */
export function imagesDir(): string {
  if (process.env.LUMINAGUARD_IMAGES_DIR) return process.env.LUMINAGUARD_IMAGES_DIR;
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(cache, "luminaguard", "images");
}

/**
 * Where LuminaGuard keeps state that must outlive a run (the audit log).
 * LUMINAGUARD_STATE_DIR overrides it; else $XDG_STATE_HOME/luminaguard, else
 * ~/.local/state/luminaguard.
 */
export function stateDir(): string {
  if (process.env.LUMINAGUARD_STATE_DIR) return process.env.LUMINAGUARD_STATE_DIR;
  const state = process.env.XDG_STATE_HOME || join(homedir(), ".local", "state");
  return join(state, "luminaguard");
}
