/**
 * The starter config `luminaguard config init` writes: every section with its
 * defaults, commented in YAML (JSON has no comments; the JSON version is the
 * same settings, and docs/config.md explains them).
 */

/** The commented YAML starter. Every value shown is the default. */
export const STARTER_YAML = `# LuminaGuard configuration (YAML). Every value below is the default;
# delete what you do not change. Reference: docs/config.md.
# Environment overrides: LUMINAGUARD_<SECTION>__<KEY>=value, e.g. LUMINAGUARD_POOL__MAX=16.

sandbox:
  backend: namespace          # namespace | microvm | gvisor
  limits:
    memory: 512M              # RAM of the whole sandbox
    pids: 256                 # processes and threads
    cpus: 1                   # CPU quota in cores
  seccomp:
    level: default            # strict | default | permissive
    mode: enforce             # enforce | log
  network: none               # or an allow-list: { allow: [...], domains: [...] }
  maxFileBytes: 16M

pool:                         # warm sandboxes for the daemon and the agent
  min: 2
  max: 8
  maxQueue: 64
  leaseTimeoutMs: 30000

mcp:
  servers: {}                 # name: { command, args, sandbox } or { url, allow, headers }
  callTimeoutSeconds: 60

approval:
  approver: auto              # auto | terminal | elicitation | policy | api
  timeoutSeconds: 120
  workspaceRoots: [/workspace]

audit:
  redact: []                  # more argument names to store as [REDACTED]

daemon:
  # socket: /run/user/1000/luminaguard/daemon.sock   # default: <runtime dir>/daemon.sock
  # tcp:                      # optional loopback HTTP; a token is required
  #   port: 8940
  #   host: 127.0.0.1
  #   token: <at least 16 characters, e.g. from: openssl rand -hex 24>
  rateLimits:                 # per client: tokens per second, and burst
    api: { perSecond: 50, burst: 200 }
    sandboxSpawn: { perSecond: 2, burst: 20 }
    approval: { perSecond: 5, burst: 30 }
  webhooks: []                # [{ url, events: ["task.*", "approval.*"], secret }]
  shutdownTimeoutSeconds: 10
`;

/** The JSON starter: the same settings, without comments. */
export function starterJson(): string {
  const cfg = {
    sandbox: { backend: "namespace", limits: { memory: "512M", pids: 256, cpus: 1 }, seccomp: { level: "default", mode: "enforce" }, network: "none", maxFileBytes: "16M" },
    pool: { min: 2, max: 8, maxQueue: 64, leaseTimeoutMs: 30000 },
    mcp: { servers: {}, callTimeoutSeconds: 60 },
    approval: { approver: "auto", timeoutSeconds: 120, workspaceRoots: ["/workspace"] },
    audit: { redact: [] },
    daemon: {
      rateLimits: { api: { perSecond: 50, burst: 200 }, sandboxSpawn: { perSecond: 2, burst: 20 }, approval: { perSecond: 5, burst: 30 } },
      webhooks: [],
      shutdownTimeoutSeconds: 10,
    },
  };
  return `${JSON.stringify(cfg, null, 2)}\n`;
}
