/**
 * `luminaguard approvals list|show|approve|deny`: the red calls waiting in a
 * running daemon. Approvals exist only there (an embedded run asks on its own
 * terminal), so without a daemon each subcommand says so and exits 125.
 */
import { Command, Option } from "commander";
import { loadConfig } from "../config/load.js";
import type { DaemonClient } from "../daemon/client.js";
import { approvePending, denyPending, findPending, listPending, renderPending } from "./daemon-approvals.js";
import { requireDaemon } from "./daemon-link.js";

interface Flags {
  json?: boolean;
  reason?: string;
  socket?: string;
  config?: string;
}

const color = (): boolean => process.stdout.isTTY === true && !process.env.NO_COLOR;

async function daemon(flags: Flags): Promise<DaemonClient> {
  return requireDaemon(loadConfig(flags.config), flags.socket, "Approvals");
}

/** The `approvals` command and its subcommands. */
export function approvalsCommand(): Command {
  const common = (c: Command): Command =>
    c
      .addOption(new Option("--socket <path>", "the daemon's Unix socket (default daemon.socket, else <runtime dir>/daemon.sock)"))
      .addOption(new Option("--config <file>", "config file (default ~/.config/luminaguard/config.json)"));
  const cmd = new Command("approvals")
    .description("Red calls waiting for a person in the running daemon: list them, show a Diff Card, approve or deny.")
    .addHelpText(
      "after",
      `
Examples:
  luminaguard approvals list
  luminaguard approvals show 3f2a            # an id or a unique prefix of one
  luminaguard approvals approve 3f2a         # shows the card, approves exactly that call
  luminaguard approvals deny 3f2a --reason "not this file"

Needs a running daemon (\`luminaguard daemon\`); exit 125 when none answers.`,
    );

  common(cmd.command("list").description("List pending approvals, oldest first.").option("--json", "print as JSON")).action(async (flags: Flags) => {
    const pending = await listPending(await daemon(flags));
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(pending, null, 2)}\n`);
      return;
    }
    if (pending.length === 0) {
      process.stdout.write("No approvals are waiting.\n");
      return;
    }
    for (const p of pending) {
      const who = p.session ? `task ${p.session}` : "no task";
      process.stdout.write(`${p.id}  ${p.cardJson.server}__${p.cardJson.tool}  ${JSON.stringify(p.summary)}  ${who}  expires ${p.expiresAt.slice(11, 19)} UTC\n`);
    }
  });

  common(cmd.command("show").description("Show one pending call's Diff Card.").argument("<id>", "approval id (or a unique prefix)").option("--json", "print the entry as JSON")).action(
    async (id: string, flags: Flags) => {
      const p = await findPending(await daemon(flags), id);
      process.stdout.write(flags.json ? `${JSON.stringify(p, null, 2)}\n` : renderPending(p, color()));
    },
  );

  common(
    cmd
      .command("approve")
      .description("Show the card and approve exactly the call it shows (the approval names the card's hash).")
      .argument("<id>", "approval id (or a unique prefix)")
      .option("--reason <text>", "why, for the audit log"),
  ).action(async (id: string, flags: Flags) => {
    const client = await daemon(flags);
    const p = await findPending(client, id);
    process.stdout.write(renderPending(p, color()));
    const d = await approvePending(client, p, flags.reason);
    process.stdout.write(`Approved ${p.id} (card ${p.hash.slice(0, 12)}, by ${d.decision.by}).\n`);
  });

  common(cmd.command("deny").description("Deny a pending call.").argument("<id>", "approval id (or a unique prefix)").option("--reason <text>", "why (the agent reads it as the tool's result)")).action(
    async (id: string, flags: Flags) => {
      const client = await daemon(flags);
      const p = await findPending(client, id);
      const d = await denyPending(client, p.id, flags.reason);
      process.stdout.write(`Denied ${p.id} (${p.cardJson.server}__${p.cardJson.tool}, by ${d.decision.by}).\n`);
    },
  );
  return cmd;
}
