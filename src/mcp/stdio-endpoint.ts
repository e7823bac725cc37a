/** Endpoints for stdio MCP servers: a fresh sandbox per (re)start, the server as its one long-running process. */
import { readFile } from "node:fs/promises";
import type { StdioServerConfig } from "../config/schema.js";
import type { Sandbox } from "../sandbox/types.js";
import { toSandboxSpec } from "../config/schema.js";
import type { EndpointFactory, ServerEndpoint } from "./endpoint.js";
import { SandboxStdioTransport } from "./sandbox-transport.js";
import { sandboxReader } from "./sandbox-reader.js";
import type { SandboxSource } from "./sandboxes.js";
import { McpError } from "./errors.js";

export function stdioEndpoints(name: string, cfg: StdioServerConfig, sandboxes: SandboxSource, maxMessageBytes: number): EndpointFactory {
  const spec = toSandboxSpec(cfg.sandbox);
  const argv = [cfg.command, ...cfg.args];
  const cwd = cfg.cwd ?? "/workspace";
  return {
    kind: "stdio",
    where: `${argv.join(" ")} in a ${spec.backend} sandbox`,
    async open(signal: AbortSignal): Promise<ServerEndpoint> {
      let sandbox;
      try {
        sandbox = await sandboxes.create(spec);
      } catch (err) {
        throw new McpError("E_MCP_CONNECT", `Could not make a sandbox for MCP server '${name}': ${(err as Error).message}`, { cause: err });
      }
      try {
        await copyIn(name, sandbox, cfg.files);
        if (signal.aborted) throw new McpError("E_MCP_CONNECT", `Starting MCP server '${name}' was cancelled.`);
      } catch (err) {
        await sandbox.destroy();
        throw err;
      }
      const transport = new SandboxStdioTransport(sandbox, { argv, env: cfg.env, cwd, maxMessageBytes });
      return {
        transport,
        reader: sandboxReader(sandbox, cwd),
        describeEnd: () => {
          if (transport.endReason === undefined) return undefined;
          const tail = transport.stderrTail();
          return tail ? `${transport.endReason}; its last stderr: ${tail.slice(-500)}` : transport.endReason;
        },
        // The whole sandbox goes: whatever the server started goes with it.
        dispose: () => sandbox.destroy(),
      };
    },
  };
}

/** Copy the configured host files into a fresh sandbox, through Sandbox.files (so size limits and path rules apply). */
async function copyIn(name: string, sandbox: Sandbox, files: StdioServerConfig["files"]): Promise<void> {
  for (const f of files) {
    let data: Buffer;
    try {
      data = await readFile(f.source);
    } catch (err) {
      throw new McpError("E_MCP_CONNECT", `MCP server '${name}': cannot read ${f.source} to copy into its sandbox (${(err as Error).message}); fix mcp.servers.${name}.files.`, { cause: err });
    }
    try {
      await sandbox.files.write(f.target, data);
    } catch (err) {
      throw new McpError("E_MCP_CONNECT", `MCP server '${name}': copying ${f.source} to ${f.target} in its sandbox failed: ${(err as Error).message}`, { cause: err });
    }
  }
}
