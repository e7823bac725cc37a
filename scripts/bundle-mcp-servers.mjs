// Bundles the MCP servers the demo runs (the real @modelcontextprotocol/server-filesystem
// from npm) into one file each, dist/mcp-servers/<name>.mjs: a sandbox has no node_modules,
// so the demo copies this one file into the sandbox and runs it with the sandbox's node.
// Skipped quietly when the package is not installed (it is a development dependency).
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { pid } from "node:process";
import { build } from "esbuild";

const SERVERS = ["filesystem"];
mkdirSync("dist/mcp-servers", { recursive: true });
for (const name of SERVERS) {
  const entry = `node_modules/@modelcontextprotocol/server-${name}/dist/index.js`;
  if (!existsSync(entry)) continue;
  const result = await build({
    entryPoints: [entry],
    write: false,
    outfile: `dist/mcp-servers/${name}.mjs`,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    legalComments: "none",
    logLevel: "warning",
    // Some dependencies still call require(); give the ESM bundle one.
    banner: { js: "import { createRequire as __lgRequire } from 'node:module'; const require = __lgRequire(import.meta.url);" },
  });
  for (const file of result.outputFiles) {
    const tmp = `${file.path}.${pid}.tmp`;
    writeFileSync(tmp, file.contents);
    renameSync(tmp, file.path);
  }
}
