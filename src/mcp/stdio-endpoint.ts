/** Endpoints for stdio MCP servers: a fresh sandbox per (re)start, the server as its one long-running process. */
import type { StdioServerConfig } from "../config/schema.js";
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
      if (signal.aborted) {
        await sandbox.destroy();
        throw new McpError("E_MCP_CONNECT", `Starting MCP server '${name}' was cancelled.`);
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
