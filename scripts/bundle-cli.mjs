// Bundles the CLI into one file: one module to load instead of hundreds makes
// every `luminaguard` invocation start faster (measured in bench/spawn).
import { build } from "esbuild";

await build({
  entryPoints: ["src/cli/main.ts"],
  outfile: "dist/luminaguard.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  sourcemap: true,
  logLevel: "warning",
  // CommonJS dependencies (commander) call require() for Node built-ins.
  banner: { js: "import { createRequire as __lgCreateRequire } from 'node:module'; const require = __lgCreateRequire(import.meta.url);" },
});
