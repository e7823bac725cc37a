/** `luminaguard doctor`: run every host check and print what works, what does not, and the fix. */
import { Command } from "commander";
import type { ProbeResult, ProbeStatus } from "../probe.js";
import { namespaceBlocker, readiness, runAllProbes, type Readiness } from "../sandbox/probes.js";
import { EXIT } from "./output.js";
import { style } from "./style.js";

const HELP_AFTER = `
Checks (all run in parallel, each gives up after 5 s):
  namespace.bwrap      bubblewrap is installed and at least 0.8 (the namespace backend runs it)
  namespace.userns     bwrap really starts a sandbox with new user/pid/net namespaces
  namespace.setpriv    as root: setpriv exists to drop to the sandbox user before bwrap
  seccomp.filter       the kernel accepts seccomp BPF filters with the actions we use
  seccomp.log          SECCOMP_RET_LOG exists, which seccomp mode "log" needs
  limits.cgroups       a cgroup v1/v2 hierarchy LuminaGuard may create sandbox cgroups in
  limits.controllers   the memory, pids and cpu controllers are available
  firewall.nft         nftables is installed and usable (needs root / CAP_NET_ADMIN)
  firewall.ip          iproute2 is installed (network namespaces, veth pairs)
  firewall.netns       as root: a network namespace can be created (and is removed again)
  microvm.kvm          /dev/kvm opens AND the CPU shows VMX/SVM; otherwise micro-VMs use
                       QEMU TCG (software emulation: slower, but works)
  microvm.qemu         QEMU is installed and has the microvm machine type
  gvisor.runsc         gVisor's runsc is installed

Marks: ✓ works   ! works worse or optional feature missing   ✗ broken   - not applicable

Exit code: 0 when the namespace backend (the default) is ready, 1 when not.
The firewall, micro-VM and gVisor checks only warn: they are optional.

Examples:
  luminaguard doctor
  luminaguard doctor --json | jq .ready`;

type Paint = (s: string) => string;
const plain: Paint = (s) => s;

const MARKS: Record<ProbeStatus, string> = { ok: "✓", warn: "!", fail: "✗", skip: "-" };

/** Whether to colour output: a terminal, and the user did not ask for no colour (https://no-color.org). */
export function wantColor(): boolean {
  return process.stdout.isTTY === true && !process.env.NO_COLOR;
}

function painter(color: boolean): Record<ProbeStatus | "bold" | "dim", Paint> {
  if (!color) return { ok: plain, warn: plain, fail: plain, skip: plain, bold: plain, dim: plain };
  return { ok: style.green, warn: style.yellow, fail: style.red, skip: style.dim, bold: style.bold, dim: style.dim };
}

/** The results as an aligned table: mark, title, detail, and an indented fix line under anything not ok. */
export function renderTable(results: ProbeResult[], opts: { color: boolean }): string {
  const p = painter(opts.color);
  const width = Math.max(0, ...results.map((r) => r.title.length));
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${p[r.status](MARKS[r.status])} ${p.bold(r.title.padEnd(width))}  ${r.detail}`);
    if (r.fix && r.status !== "ok") lines.push(`${" ".repeat(width + 4)}${p.dim("fix:")} ${r.fix}`);
  }
  return lines.join("\n") + "\n";
}

/** The closing lines: whether the namespace backend can run, and what else is available. */
export function renderSummary(results: ProbeResult[], ready: Readiness, opts: { color: boolean }): string {
  const p = painter(opts.color);
  const blocker = namespaceBlocker(results);
  const head = ready.namespace
    ? p.ok("namespace backend: ready")
    : p.fail(`namespace backend: not ready: ${blocker ? `${blocker.title}: ${blocker.detail}` : "its checks did not run"}`);
  const microvm = ready.microvm === "kvm" ? "ready (KVM)" : ready.microvm === "tcg" ? "ready (TCG, no KVM)" : "not available";
  const yes = (b: boolean): string => (b ? "ready" : "not available");
  return `${head}\n${p.dim(`micro-VM backend: ${microvm}; gVisor backend: ${yes(ready.gvisor)}; egress firewall: ${yes(ready.firewall)}`)}\n`;
}

/** The `--json` document. */
export function doctorJson(results: ProbeResult[], ready: Readiness): string {
  return JSON.stringify({ probes: results, ready }, null, 2) + "\n";
}

/** The `doctor` command. */
export function doctorCommand(): Command {
  return new Command("doctor")
    .description("Check this host: which sandbox backends and features work here, what does not, and how to fix it")
    .option("--json", "print { probes, ready } as JSON instead of the table")
    .addHelpText("after", HELP_AFTER)
    .action(async (flags: { json?: boolean }) => {
      const results = await runAllProbes();
      const ready = readiness(results);
      if (flags.json) {
        process.stdout.write(doctorJson(results, ready));
      } else {
        const color = wantColor();
        process.stdout.write(renderTable(results, { color }) + "\n" + renderSummary(results, ready, { color }));
      }
      // exitCode, not exit(): a probe that ran out of time may still be cleaning up (the netns probe).
      process.exitCode = ready.namespace ? EXIT.ok : EXIT.failure;
    });
}
