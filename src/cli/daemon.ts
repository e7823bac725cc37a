/** `luminaguard daemon`: run the daemon in the foreground, ask a running one for its status, manage webhook dead letters. */
import { Command, Option } from "commander";
import { loadConfig } from "../config/load.js";
import { UsageError } from "../errors.js";
import { EXIT } from "./output.js";

interface RunFlags {
  socket?: string;
  port?: string;
  host?: string;
  token?: string;
  config?: string;
}

/** The `daemon` command and its subcommands. */
export function daemonCommand(): Command {
  const configOption = (): Option => new Option("--config <file>", "config file (default ~/.config/luminaguard/config.json)");
  const socketOption = (): Option => new Option("--socket <path>", "Unix socket (default daemon.socket, else <runtime dir>/daemon.sock)");
  const cmd = new Command("daemon")
    // `daemon status --socket X`: options after a subcommand are the subcommand's, not the daemon's own.
    .enablePositionalOptions()
    .description("Run the LuminaGuard daemon in the foreground: warm sandbox pool, MCP hub, HTTP API, approvals, events, metrics.")
    .addOption(socketOption())
    .option("--port <n>", "also serve HTTP on a loopback TCP port (needs --token or daemon.tcp.token)")
    .option("--host <address>", "address for --port", "127.0.0.1")
    .option("--token <token>", "bearer token for TCP clients (prefer LUMINAGUARD_DAEMON__TCP__TOKEN: flags show in `ps`)")
    .addOption(configOption())
    .addHelpText(
      "after",
      `
Examples:
  luminaguard daemon
  LUMINAGUARD_DAEMON__TCP__TOKEN=$(openssl rand -hex 24) luminaguard daemon --port 8940
  luminaguard daemon status

SIGTERM or Ctrl-C stops it gracefully: running tasks are cancelled, pending
approvals denied, every sandbox destroyed, the socket removed.`,
    )
    .action(async (flags: RunFlags) => {
      const config = loadConfig(flags.config);
      const port = flags.port === undefined ? undefined : parsePort(flags.port);
      const tcp = port === undefined ? config.daemon.tcp : { port, host: flags.host ?? config.daemon.tcp?.host ?? "127.0.0.1", token: flags.token ?? config.daemon.tcp?.token };
      const { Daemon } = await import("../daemon/daemon.js");
      const daemon = await Daemon.start({ config, socketPath: flags.socket, tcp });
      // Tasks run on the daemon's own hub: their red calls wait in its approval queue, every call lands in its audit log.
      const { AgentTaskRunner } = await import("../daemon/agent-tasks.js");
      daemon.setTaskRunner(new AgentTaskRunner(config, daemon.hub));
      await new Promise<void>((resolve) => {
        let stopping = false;
        const onSignal = (signal: NodeJS.Signals): void => {
          if (stopping) {
            process.stderr.write(`luminaguard daemon: ${signal} again, exiting without finishing the cleanup\n`);
            process.exit(130);
          }
          stopping = true;
          void daemon.stop().then(resolve, (err: unknown) => {
            process.stderr.write(`luminaguard daemon: shutdown failed: ${(err as Error).message}\n`);
            process.exitCode = EXIT.runtime;
            resolve();
          });
        };
        process.on("SIGINT", onSignal);
        process.on("SIGTERM", onSignal);
      });
    });

  cmd
    .command("status")
    .description("Say whether a daemon is running, where, since when, and its MCP servers.")
    .addOption(socketOption())
    .option("--json", "print as JSON")
    .addOption(configOption())
    .action(async (flags: { socket?: string; json?: boolean; config?: string }) => {
      const socket = await socketFor(flags);
      const { DaemonClient } = await import("../daemon/client.js");
      const client = new DaemonClient(socket);
      let health;
      try {
        health = await client.health();
      } catch (err) {
        if (flags.json) process.stdout.write(`${JSON.stringify({ running: false, socket, error: (err as Error).message })}\n`);
        else process.stdout.write(`No daemon is running on ${socket}. Start one with \`luminaguard daemon\`.\n`);
        process.exitCode = EXIT.failure;
        return;
      }
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ running: true, socket, ...health }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`running on ${socket} (pid ${health.pid}, version ${health.version}, up ${formatUptime(health.uptime)})\n`);
      const backends = Object.entries(health.backends).map(([n, s]) => `${n} ${s}`);
      process.stdout.write(`  backends: ${backends.join(", ") || "none started"}\n  agent: ${health.agent ? "ready" : "not plugged in"}\n`);
      for (const s of health.servers) process.stdout.write(`  MCP server ${s.name}: ${s.state}\n`);
    });

  const hooks = cmd.command("webhooks").description("Webhook deliveries that failed every attempt (the dead-letter list).");
  hooks
    .command("dead-letters")
    .description("List failed webhook deliveries, oldest first.")
    .option("--json", "print as JSON")
    .action(async (flags: { json?: boolean }) => {
      const { DeadLetters } = await import("../daemon/webhooks/dead-letters.js");
      const letters = new DeadLetters().list();
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(letters, null, 2)}\n`);
        return;
      }
      if (letters.length === 0) {
        process.stdout.write("No failed webhook deliveries.\n");
        return;
      }
      for (const l of letters) process.stdout.write(`${l.id}  ${l.failedAt}  ${l.event}  ${l.url}  (${l.attempts} attempts: ${l.lastError})\n`);
    });
  hooks
    .command("replay")
    .description("Send one failed delivery again (signed with the webhook's current secret); it leaves the list when it gets through.")
    .argument("<id>", "dead letter id (a unique prefix is enough)")
    .addOption(configOption())
    .action(async (id: string, flags: { config?: string }) => {
      const config = loadConfig(flags.config);
      const { DeadLetters } = await import("../daemon/webhooks/dead-letters.js");
      const { replayDeadLetter } = await import("../daemon/webhooks/dispatcher.js");
      const list = new DeadLetters();
      const letter = list.get(id);
      await replayDeadLetter(letter, config.daemon.webhooks, list, config.daemon.webhookRetry.timeoutMs);
      process.stdout.write(`Delivered ${letter.event} to ${letter.url} (${letter.id}).\n`);
    });
  return cmd;
}

async function socketFor(flags: { socket?: string; config?: string }): Promise<string> {
  if (flags.socket) return flags.socket;
  const config = loadConfig(flags.config);
  if (config.daemon.socket) return config.daemon.socket;
  const { defaultSocketPath } = await import("../daemon/listen.js");
  return defaultSocketPath();
}

function parsePort(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new UsageError(`--port takes a port number 0-65535, not '${text}'.`);
  return n;
}

function formatUptime(s: number): string {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
