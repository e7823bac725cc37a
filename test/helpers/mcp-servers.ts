/**
 * The real MCP servers from npm (@modelcontextprotocol/server-filesystem,
 * -memory, -everything), made runnable inside a sandbox: each bundled by
 * esbuild into one file in a world-readable temp folder (the sandbox user
 * cannot reach a checkout under /root), mounted read-only at /opt/mcp.
 */
import { build } from "esbuild";
import { chmod, copyFile, mkdtemp, rm } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Sandbox, SandboxSpec } from "../../src/sandbox/types.js";
import type { SandboxSource } from "../../src/mcp/sandboxes.js";
import { BackendSandboxes } from "../../src/mcp/sandboxes.js";

export type ServerName = "filesystem" | "memory" | "everything";

/** The checkout (found by its node_modules, so this file also works compiled into .cache/bench-build/). */
function checkoutRoot(): string {
  let dir = fileURLToPath(new URL(".", import.meta.url));
  while (!existsSync(join(dir, "node_modules", "@modelcontextprotocol", "server-everything"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find node_modules/@modelcontextprotocol/server-everything; run npm install");
    dir = up;
  }
  return dir;
}
const ROOT = checkoutRoot();
export const MOUNT = "/opt/mcp";

export interface StagedServers {
  dir: string;
  /** Path of the node binary inside the sandbox. */
  node: string;
  /** argv inside the sandbox for a server. */
  argv(name: ServerName, ...args: string[]): string[];
  /** The `mounts` entry a sandbox needs to see the servers (and node, when staged). */
  mount: { source: string; target: string };
  /** Path of a bundle on the host (to run the server outside a sandbox, e.g. over HTTP). */
  hostPath(name: ServerName): string;
  cleanup(): Promise<void>;
}

/** Node on the host's /usr is visible in every namespace sandbox; otherwise stage our own binary. */
function hostNodeUsable(): boolean {
  if (!existsSync("/usr/bin/node")) return false;
  try {
    const v = execFileSync("/usr/bin/node", ["--version"], { encoding: "utf8" });
    return Number(/^v(\d+)/.exec(v)?.[1] ?? 0) >= 20;
  } catch {
    return false;
  }
}

export async function stageMcpServers(names: ServerName[] = ["filesystem", "memory", "everything"]): Promise<StagedServers> {
  const dir = await mkdtemp(join(tmpdir(), "lg-mcp-"));
  await chmod(dir, 0o755);
  await Promise.all(
    names.map((name) =>
      build({
        entryPoints: [join(ROOT, "node_modules", "@modelcontextprotocol", `server-${name}`, "dist", "index.js")],
        bundle: true,
        platform: "node",
        format: "esm",
        target: "node20",
        outfile: join(dir, `${name}.mjs`),
        // Some dependencies still call require(); give ESM output one.
        banner: { js: "import { createRequire as __lgRequire } from 'node:module'; const require = __lgRequire(import.meta.url);" },
        logLevel: "error",
      }),
    ),
  );
  let node = "/usr/bin/node";
  if (!hostNodeUsable()) {
    await copyFile(process.execPath, join(dir, "node"));
    await chmod(join(dir, "node"), 0o755);
    node = `${MOUNT}/node`;
  }
  return {
    dir,
    node,
    argv: (name, ...args) => [node, `${MOUNT}/${name}.mjs`, ...args],
    mount: { source: dir, target: MOUNT },
    hostPath: (name) => join(dir, `${name}.mjs`),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A sandbox source that remembers every sandbox it made, so a test can check none is left. */
export class RecordingSandboxes implements SandboxSource {
  readonly made: Sandbox[] = [];
  private readonly inner = new BackendSandboxes();

  async create(spec: SandboxSpec): Promise<Sandbox> {
    const sb = await this.inner.create(spec);
    this.made.push(sb);
    return sb;
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  ids(): string[] {
    return this.made.map((s) => s.id);
  }
}
