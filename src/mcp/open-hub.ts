/**
 * A hub from the validated config: its servers, the Approval Cliff's rules and
 * approver, and the audit log. The one place the CLI (and later the daemon)
 * turn config into a running hub.
 */
import type { Config } from "../config/schema.js";
import type { Approver } from "../approval/types.js";
import { AuditStore } from "../approval/audit/store.js";
import { auditPath, redactPatterns } from "../approval/audit/config.js";
import { McpHub } from "./hub.js";
import { BackendSandboxes, type SandboxSource } from "./sandboxes.js";

export interface OpenHubOptions {
  approver: Approver;
  /** Only these servers (e.g. the one `mcp call` needs); default all enabled ones. */
  only?: string[] | undefined;
  /** Written to every audit row. */
  session?: string | undefined;
  /** Write the audit log (default true). */
  audit?: boolean;
  /** Where servers get their sandboxes (default: backends made for this hub, closed with it). */
  sandboxes?: SandboxSource | undefined;
}

export interface OpenHub {
  hub: McpHub;
  audit: AuditStore | undefined;
  /** Stop every server, destroy their sandboxes, close the audit log. */
  close(): Promise<void>;
}

export function openHub(config: Config, opts: OpenHubOptions): OpenHub {
  const servers = opts.only ? Object.fromEntries(Object.entries(config.mcp.servers).filter(([name]) => opts.only!.includes(name))) : config.mcp.servers;
  const audit = opts.audit === false ? undefined : AuditStore.open(config.audit.path ?? auditPath(), { redact: redactPatterns(config.audit) });
  const hub = new McpHub({
    config: { ...config.mcp, servers },
    gate: { rules: config.approval.rules, workspaceRoots: config.approval.workspaceRoots, timeoutMs: config.approval.timeoutSeconds * 1000, approver: opts.approver },
    audit,
    sandboxes: opts.sandboxes ?? new BackendSandboxes({ sandboxUid: config.sandbox.uid, microvm: config.microvm }),
    session: opts.session,
  });
  return {
    hub,
    audit,
    async close() {
      try {
        await hub.close();
      } finally {
        audit?.close();
      }
    },
  };
}
