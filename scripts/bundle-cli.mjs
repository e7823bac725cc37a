// Bundles the CLI: one entry file plus chunks that load only when their command
// runs. Fewer, lazily loaded modules make every `luminaguard` start faster
// (measured in bench/spawn).
import { rmSync } from "node:fs";
import { build } from "esbuild";

rmSync("dist/cli-bundle", { recursive: true, force: true });
await build({
  entryPoints: { luminaguard: "src/cli/main.ts" },
  outdir: "dist/cli-bundle",
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node22",
  sourcemap: true,
  logLevel: "warning",
  // CommonJS dependencies (commander) call require() for Node built-ins.
  banner: { js: "import { createRequire as __lgCreateRequire } from 'node:module'; const require = __lgCreateRequire(import.meta.url);" },
});
