/**
 * The guest agent's entry point (bundled to dist/guest/agent.mjs, run by the
 * guest's init as root): parse the flags, pick the channel, serve hosts forever.
 *
 *   node agent.mjs --port lg.agent [--helper PATH]   in a micro-VM (virtio-serial)
 *   node agent.mjs --stdio                           frames over stdin/stdout (tests, gVisor)
 *   node agent.mjs --listen SOCKET                   frames over a Unix socket (tests)
 *
 * Other flags: --root-dir DIR (the /workspace and /tmp areas are DIR/workspace
 * and DIR/tmp; default "/", i.e. the real ones), --state-dir DIR (private files;
 * default /run/luminaguard-agent), --no-clock and --no-hostname (reseed leaves
 * the clock and the hostname alone: for running on a host).
 */
import { parseArgs } from "node:util";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Agent } from "./dispatcher.js";
import { serveStdio, serveUnixSocket } from "./link.js";
import { serveVirtioPort } from "./virtio-port.js";

// Blocking port reads and writes each hold a libuv pool thread; leave room for file work.
// Must be set before the pool starts, i.e. before the first asynchronous fs call.
process.env.UV_THREADPOOL_SIZE ??= "8";

declare const LG_AGENT_VERSION: string | undefined;
const AGENT_VERSION = typeof LG_AGENT_VERSION === "string" ? LG_AGENT_VERSION : "dev";

const USAGE = "usage: agent.mjs (--port NAME | --stdio | --listen SOCKET) [--helper PATH] [--root-dir DIR] [--state-dir DIR] [--no-clock] [--no-hostname]";

function log(msg: string): void {
  process.stderr.write(`lg-agent: ${msg}\n`);
}

function main(): void {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: "string" },
        stdio: { type: "boolean" },
        listen: { type: "string" },
        helper: { type: "string" },
        "root-dir": { type: "string" },
        "state-dir": { type: "string" },
        "no-clock": { type: "boolean" },
        "no-hostname": { type: "boolean" },
      },
      strict: true,
    }));
  } catch (err) {
    log(`${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const modes = [values.port !== undefined, values.stdio === true, values.listen !== undefined].filter(Boolean).length;
  if (modes !== 1) {
    log(`choose exactly one channel.\n${USAGE}`);
    process.exit(2);
  }
  const root = values["root-dir"] ?? "/";
  const agent = new Agent({
    agentVersion: AGENT_VERSION,
    areas: { workspace: join(root, "workspace"), tmp: join(root, "tmp") },
    stateDir: values["state-dir"] ?? "/run/luminaguard-agent",
    reseed: { helper: values.helper, setClock: !values["no-clock"], setHostname: !values["no-hostname"] },
    // Only in a micro-VM (the virtio-serial channel) is eth0 the guest's own; elsewhere it is a host's.
    network: { device: values.port !== undefined ? "eth0" : undefined },
    log,
  });
  // A stray EPIPE or a bug in one request must not take the host's only way into the guest down.
  process.on("uncaughtException", (err) => log(`unexpected error (continuing): ${err.stack ?? err.message}`));
  process.on("unhandledRejection", (err) => log(`unexpected rejection (continuing): ${String(err)}`));
  process.on("SIGPIPE", () => {});
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.on(sig, () => {
      agent.stop();
      if (values.listen !== undefined) rmSync(values.listen, { force: true });
      process.exit(0);
    });
  }

  if (values.stdio) {
    serveStdio(agent, () => process.exit(0));
  } else if (values.listen !== undefined) {
    serveUnixSocket(values.listen, agent).catch((err: unknown) => {
      log(`cannot listen on ${values.listen}: ${(err as Error).message}`);
      process.exit(1);
    });
  } else {
    serveVirtioPort(values.port!, agent, log).catch((err: unknown) => {
      // The guest's init restarts us.
      log(`virtio-serial port ${values.port} failed: ${(err as Error).message}`);
      process.exit(1);
    });
  }
}

main();
