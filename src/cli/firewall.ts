/** `luminaguard firewall`: look at the egress firewall of live sandboxes. */
import { Command } from "commander";
import { liveNetworks, showSandboxRules } from "../policy/firewall/show.js";

/** The `firewall` command and its subcommands. */
export function firewallCommand(): Command {
  const cmd = new Command("firewall").description("Inspect the egress firewall of networked sandboxes (needs root).");
  cmd
    .command("show")
    .description("Print the live nftables rules and sets of a sandbox; without an id, list the sandboxes that have a network.")
    .argument("[sandbox]", "sandbox id, e.g. sb-1a2b3c4d5e6f")
    .option("--json", "print the list as JSON")
    .action(async (sandbox: string | undefined, flags: { json?: boolean }) => {
      if (sandbox) {
        process.stdout.write(`${await showSandboxRules(sandbox)}\n`);
        return;
      }
      const live = liveNetworks();
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(live, null, 2)}\n`);
        return;
      }
      if (live.length === 0) {
        process.stdout.write("No sandbox has a network right now (sandboxes with network \"none\" have no firewall).\n");
        return;
      }
      for (const n of live) process.stdout.write(`${n.sandboxId}  ${n.subnet}  ${n.netns}  pid ${n.ownerPid}${n.ownerAlive ? "" : " (gone)"}\n`);
    });
  return cmd;
}
