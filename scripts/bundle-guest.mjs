// Bundles the guest agent into one self-contained file, dist/guest/agent.mjs, which
// the image build copies into the micro-VM (the guest has Node 20 and no node_modules).
// Written by rename, so a test or image build reading it meanwhile never sees half a file.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { pid } from "node:process";
import { build } from "esbuild";

const outfile = "dist/guest/agent.mjs";
const { version } = JSON.parse(readFileSync("package.json", "utf8"));
const result = await build({
  entryPoints: ["src/guest/agent.ts"],
  outfile,
  write: false,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  define: { LG_AGENT_VERSION: JSON.stringify(version) },
  legalComments: "none",
  logLevel: "warning",
});
mkdirSync("dist/guest", { recursive: true });
for (const file of result.outputFiles) {
  const tmp = `${file.path}.${pid}.tmp`;
  writeFileSync(tmp, file.contents);
  renameSync(tmp, file.path);
}
