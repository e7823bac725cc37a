/**
 * The text of docs/SECURITY.md: the threat model (fixed prose) and the results
 * table bench/security.ts measured. Kept apart so the prose is easy to review.
 */
import type { EscapeAttempt } from "../test/security/attempts.js";

export interface Cell {
  result: "blocked" | "ESCAPED" | "inconclusive" | "error";
  detail?: string;
}

export interface Column {
  backend: string;
  /** Why this backend could not run here; its cells are then n/a. */
  unavailable?: string;
  cells: Map<string, Cell>;
  seconds?: number;
}

const esc = (s: string): string => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

const THREAT_MODEL = `## Threat model

### What LuminaGuard protects against

- **Untrusted code in the sandbox.** Whatever an agent or an MCP server runs (a tool, a script it
  wrote, a package it installed) may be hostile. It must not read host files outside what was
  mounted, write outside its workspace and \`/tmp\`, see or signal host processes, reach the host's
  loopback or any network the policy does not allow, gain capabilities, or reach the kernel
  surfaces used by most container escapes (module loading, \`bpf\`, \`perf_event_open\`, nested
  user namespaces, \`mount\`, \`ptrace\`, \`kexec\`). The table below checks exactly that.
- **Hostile MCP servers.** A server runs inside a sandbox like any tool, so it gets the same
  limits; its protocol output is untrusted input to the hub: lines over the size cap end that
  server with a reason, invalid tool names and tools whose definitions do not validate are left out (and
  named), non-JSON lines are skipped; the hub keeps serving the others
  (\`test/fuzz/mcp-hostile.test.ts\`).
- **Prompt-injected agents attempting world-changing actions.** An agent that read a hostile web
  page or file may try to edit, delete, send or pay. Every such call is classified red and stops
  at the Approval Cliff until a person approves the Diff Card; every decision is written to a
  hash-chained audit log (\`docs/approval.md\`). Egress is denied by default (\`docs/firewall.md\`),
  so exfiltration needs an allowed destination.
- **Bad input to the runtime itself.** The guest protocol decoder, the config file, the seccomp
  compiler, the firewall policy parser and the classifier are fuzzed with property-based tests
  (\`test/fuzz/\`): bad input gets a typed error with a stable code, never a crash.

### What it does not protect against

- **Kernel 0-days on the namespace backend.** Namespace sandboxes share the host kernel; seccomp
  narrows the reachable surface but an exploitable bug in an allowed syscall is an escape. Use the
  micro-VM backend (or gVisor) for code you have reason to fear.
- **Side channels.** Spectre-class attacks, cache timing, and what an attacker can learn from
  resource use (CPU time, memory pressure) across sandboxes or with the host are out of scope.
- **A compromised host.** Root on the host (or the user running LuminaGuard) controls the
  sandboxes, the approval queue and the audit log's storage; the hash chain detects edits of past
  rows but cannot stop someone who controls the machine.
- **Timing under TCG.** Without hardware KVM the micro-VM runs under QEMU's software emulation;
  isolation is the same but guests can observe emulation timing, and QEMU's TCG code is a larger
  surface than KVM's. Timing-sensitive guarantees are not given.
- **Approvals a person gives carelessly.** The Diff Card shows what would change; a person who
  approves without reading it, or writes a user rule that turns red calls green, gets what they
  approved.
- **Allowed egress.** Data can leave to any destination the network policy allows; the policy
  is the control, not content inspection.
- **Denial of service of the host** beyond the per-sandbox cgroup limits (memory, pids, CPU), e.g.
  disk I/O bandwidth or host-wide kernel resources that cgroups do not account.

### What each backend adds

| backend | boundary | an escape needs |
|---|---|---|
| \`namespace\` | Linux user/pid/mount/net/ipc/uts/cgroup namespaces (bubblewrap), our seccomp allow-list, no capabilities, \`no_new_privs\`, cgroup limits | a bug in the host kernel reachable through the allowed syscalls |
| \`gvisor\` | gVisor's Sentry: a user-space kernel that implements the syscalls, itself confined by its own seccomp filter on the host | a bug in the Sentry and then in the small set of host syscalls it may use |
| \`microvm\` | its own guest kernel under QEMU \`-M microvm\` (KVM when the host has it, TCG otherwise), the namespace confinement again inside the guest, and QEMU jailed on the host (own namespaces, uid 65534, seccomp, \`-sandbox on\`) | a guest-kernel escape, then a QEMU device-emulation bug, then an escape from QEMU's jail |
`;

/** The whole document. */
export function securityDoc(o: { attempts: EscapeAttempt[]; columns: Column[]; machine: string; date: string }): string {
  const header = `| attempt | ${o.columns.map((c) => c.backend).join(" | ")} |`;
  const rule = `|---|${o.columns.map(() => "---").join("|")}|`;
  const rows = o.attempts.map((a) => {
    const cells = o.columns.map((c) => {
      if (c.unavailable) return "n/a";
      const cell = c.cells.get(a.id);
      if (!cell) return "n/a";
      return cell.detail ? `${cell.result}: ${esc(cell.detail)}` : cell.result;
    });
    return `| \`${a.id}\`: ${esc(a.title)} | ${cells.join(" | ")} |`;
  });
  const notes = o.columns.map((c) => (c.unavailable ? `- \`${c.backend}\`: n/a here: ${esc(c.unavailable)}` : `- \`${c.backend}\`: ran all ${c.cells.size} attempts in one sandbox in ${c.seconds?.toFixed(1)} s`));
  const details = o.attempts.map((a) => `| \`${a.id}\` | ${esc(a.tries)} | ${esc(a.how)} | ${esc(a.blockedWhen)} |`);
  return [
    "# Security",
    "",
    "Generated by `make bench` (bench/security.ts, bench/security-doc.ts); do not edit by hand.",
    "",
    `Machine: ${o.machine}. Written ${o.date}.`,
    "",
    THREAT_MODEL,
    "## Escape attempts × backend",
    "",
    "Each attempt runs inside one sandbox per backend with the default config (seccomp level `default`, no network,",
    "memory 256M or 160M for the micro-VM, 64 pids). The same attempts are assertions in the vitest escape suite",
    "(`test/security/escape-suite.ts`, data in `test/security/attempts.ts`), so a backend that lets one through fails `make test`.",
    "`blocked`: every check held. `ESCAPED`: a check failed (what was observed follows). `inconclusive`: a precondition",
    "failed, so the attempt proved nothing. `error`: the sandbox failed to run the attempt. `n/a`: the backend cannot run here.",
    "",
    header,
    rule,
    ...rows,
    "",
    ...notes,
    "",
    "## The attempts",
    "",
    "| id | an escape would gain | how (inside the sandbox) | blocked when |",
    "|---|---|---|---|",
    ...details,
    "",
  ].join("\n");
}
