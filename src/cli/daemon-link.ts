/**
 * How a CLI command finds the running daemon: the socket named by --socket,
 * else the config's daemon.socket, else the default path (the same rule the
 * daemon uses to pick where it listens, so both agree on one config).
 */
import type { Config } from "../config/schema.js";
import type { DaemonClient } from "../daemon/client.js";
import { DaemonError } from "../daemon/errors.js";

/** The socket a daemon for this config listens on. */
export async function daemonSocket(config: Config, flag?: string): Promise<string> {
  if (flag) return flag;
  if (config.daemon.socket) return config.daemon.socket;
  const { defaultSocketPath } = await import("../daemon/listen.js");
  return defaultSocketPath();
}

/** A client when a daemon answers on the config's socket, else undefined (run embedded). */
export async function runningDaemon(config: Config, flag?: string): Promise<DaemonClient | undefined> {
  const { connectIfRunning } = await import("../daemon/client.js");
  return connectIfRunning(await daemonSocket(config, flag));
}

/** The running daemon, or E_DAEMON_NOT_RUNNING saying that `what` lives only in a daemon. */
export async function requireDaemon(config: Config, flag: string | undefined, what: string): Promise<DaemonClient> {
  const socket = await daemonSocket(config, flag);
  const { connectIfRunning } = await import("../daemon/client.js");
  const client = await connectIfRunning(socket);
  if (!client) {
    throw new DaemonError(
      "E_DAEMON_NOT_RUNNING",
      `${what} live in a running daemon, and none answers on ${socket}. Start one with \`luminaguard daemon\` (with the same --config), or pass --socket. An embedded \`luminaguard run\` asks on its own terminal instead.`,
    );
  }
  return client;
}

/** The `--socket X` to repeat in a hint, when the socket is not the default one. */
export async function socketHint(socket: string): Promise<string> {
  const { defaultSocketPath } = await import("../daemon/listen.js");
  return socket === defaultSocketPath() ? "" : ` --socket ${socket}`;
}
