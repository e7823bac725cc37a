/**
 * The one schema for LuminaGuard's configuration. Everything from a config file,
 * the environment or the command line passes through here once, at the edge; the
 * rest of the code trusts the typed result.
 *
 * zod/mini rather than classic zod: the same validator, tree-shakable, so the
 * bundled CLI loads in ~10 ms instead of ~100 ms (every `luminaguard exec` pays it).
 */
import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";
import { parseSize } from "./size.js";
import type { SandboxSpec } from "../sandbox/types.js";
import { mountTargetProblem } from "../sandbox/mounts.js";
import { networkPolicySchema } from "../policy/firewall/policy.js";
import { approvalSchema } from "../approval/config.js";
import { auditSchema } from "../approval/audit/config.js";
import { agentSchema } from "../agent/config.js";
import { daemonSchema } from "../daemon/config.js";

z.config(en());

const size = (what: string) =>
  z.pipe(
    z.union([z.string(), z.number()]),
    z.transform((v: string | number, ctx) => {
      try {
        return parseSize(v, what);
      } catch (err) {
        ctx.issues.push({ code: "custom", message: (err as Error).message, input: v });
        return z.NEVER;
      }
    }),
  );

const int = (min: number, max: number, message?: string) => z.number().check(z.int(), z.gte(min, message), z.lte(max));

export const limitsSchema = z.strictObject({
  memory: z._default(z.pipe(size("memory limit"), z.number().check(z.gte(16 * 1024 * 1024, "memory limit must be at least 16M"))), 512 * 1024 * 1024),
  pids: z._default(int(4, 1_000_000, "pids limit must be at least 4 (the launcher uses 2)"), 256),
  cpus: z._default(z.number().check(z.positive(), z.lte(1024)), 1),
  /** The sandbox's own /tmp and /workspace together (a size-limited tmpfs on the namespace and gVisor backends). */
  disk: z._default(z.pipe(size("disk limit"), z.number().check(z.gte(1024 * 1024, "disk limit must be at least 1M"), z.lte(2 ** 50, "disk limit must be at most 1P"))), 1024 * 1024 * 1024),
});

export const mountSchema = z.strictObject({
  source: z.string().check(z.refine((p) => p.startsWith("/"), "mount source must be an absolute host path")),
  target: z.string().check(
    z.superRefine((p, ctx) => {
      const problem = mountTargetProblem(p);
      if (problem) ctx.issues.push({ code: "custom", message: problem, input: p });
    }),
  ),
});

export const sandboxSchema = z.strictObject({
  backend: z._default(z.enum(["namespace", "microvm", "gvisor"]), "namespace"),
  limits: z.prefault(limitsSchema, {}),
  seccomp: z.prefault(
    z.strictObject({
      level: z._default(z.enum(["strict", "default", "permissive"]), "default"),
      mode: z._default(z.enum(["enforce", "log"]), "enforce"),
    }),
    {},
  ),
  network: z._default(networkPolicySchema, "none"),
  workspace: z.optional(z.string().check(z.minLength(1))),
  maxFileBytes: z._default(size("file size limit"), 16 * 1024 * 1024),
  /** Host paths shown read-only inside the sandbox (namespace and gVisor backends). */
  mounts: z._default(z.array(mountSchema), []),
  /** Host uid the sandbox runs as when LuminaGuard runs as root. */
  uid: z.optional(int(1, 2 ** 32 - 2)),
});

export const poolSchema = z
  .strictObject({
    min: z._default(int(0, 10_000), 2),
    max: z._default(int(1, 10_000), 8),
    maxQueue: z._default(int(0, 1_000_000), 64),
    leaseTimeoutMs: z._default(int(1, 24 * 3_600_000), 30_000),
  })
  .check(z.refine((p) => p.min <= p.max, { message: "pool.min must not exceed pool.max" }));

/** The micro-VM backend: which guest image and its snapshot pool (the VM's shape comes from sandbox.limits). */
export const microvmSchema = z.strictObject({
  /** Name of the guest image (`luminaguard image list`). */
  image: z._default(z.string().check(z.regex(/^[a-z0-9][a-z0-9-]{0,40}$/, "image names are lower-case letters, digits and -")), "default"),
  /** QEMU processes kept started and waiting for a snapshot, so a new sandbox costs only the restore. */
  prestarted: z._default(int(0, 64), 1),
  /** Templates older than this are rebuilt (fresh boot, fresh state); 0 = never. */
  templateMaxAgeMinutes: z._default(int(0, 7 * 24 * 60), 60),
});

/** Server names: no "__", which separates server from tool in the hub's tool names. */
const SERVER_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]|_(?!_)){0,62}$/;

/** An MCP server started inside a sandbox and spoken to over its stdin/stdout. */
export const stdioServerSchema = z.strictObject({
  type: z.literal("stdio"),
  command: z.string().check(z.minLength(1)),
  args: z._default(z.array(z.string()), []),
  env: z._default(z.record(z.string(), z.string()), {}),
  cwd: z.optional(z.string().check(z.minLength(1))),
  /**
   * Host files copied into the sandbox (under /workspace or /tmp) before the server starts:
   * how a server's code reaches a micro-VM, which cannot see host paths (`sandbox.mounts`).
   */
  files: z._default(
    z.array(
      z.strictObject({
        source: z.string().check(z.refine((p) => p.startsWith("/"), "files[].source must be an absolute host path")),
        target: z.string().check(z.refine((p) => /^\/(workspace|tmp)\/[^]+$/.test(p) && !p.split("/").includes(".."), "files[].target must be a file under /workspace or /tmp (the sandbox's writable areas)")),
      }),
    ),
    [],
  ),
  /** The sandbox the server runs in (its own settings; defaults as for `sandbox`). */
  sandbox: z.prefault(sandboxSchema, {}),
  enabled: z._default(z.boolean(), true),
});

/** A remote MCP server over Streamable HTTP (or the older HTTP+SSE). */
export const httpServerSchema = z.strictObject({
  type: z.literal("http"),
  url: z.url({ protocol: /^https?$/, error: "url must be an http:// or https:// URL" }),
  headers: z._default(z.record(z.string(), z.string()), {}),
  transport: z._default(z.enum(["auto", "streamable-http", "sse"]), "auto"),
  /** Egress allow-list ("host", "host:port", "*.domain", "127.0.0.1:8080"), matched as the egress proxy matches; the URL's host must be in it. */
  allow: z._default(z.array(z.string()), []),
  enabled: z._default(z.boolean(), true),
});

/** `type` may be left out: a `command` means stdio, a `url` means http. */
const serverSchema = z.pipe(
  z.transform((raw: unknown) => {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw) || "type" in raw) return raw;
    return "url" in raw ? { type: "http", ...raw } : { type: "stdio", ...raw };
  }),
  z.discriminatedUnion("type", [stdioServerSchema, httpServerSchema]),
);

export const mcpSchema = z.strictObject({
  servers: z._default(
    z.record(z.string(), serverSchema).check(
      // Checked here rather than as the record's key schema, whose failure message is only "Invalid key in record".
      z.superRefine((servers, ctx) => {
        for (const name of Object.keys(servers)) {
          if (!SERVER_NAME.test(name)) ctx.issues.push({ code: "custom", input: name, path: [name], message: `MCP server name '${name}' is not allowed: use letters, digits, - and single _ (at most 63; '__' separates server and tool)` });
        }
      }),
    ),
    {},
  ),
  /** A tools/call that takes longer fails with E_MCP_TIMEOUT (and is cancelled on the server). */
  callTimeoutSeconds: z._default(z.number().check(z.positive(), z.lte(86_400)), 60),
  /** Starting a server (sandbox + initialize) that takes longer counts as a failed attempt. */
  connectTimeoutSeconds: z._default(z.number().check(z.positive(), z.lte(3_600)), 30),
  /** A tool result larger than this (as JSON) is refused with E_MCP_OUTPUT_LIMIT. */
  maxOutputBytes: z._default(size("MCP output limit"), 1024 * 1024),
  reconnect: z.prefault(
    z.strictObject({
      attempts: z._default(int(0, 100), 5),
      baseMs: z._default(int(1, 60_000), 250),
      maxMs: z._default(int(1, 600_000), 10_000),
    }),
    {},
  ),
});

export const configSchema = z.strictObject({
  sandbox: z.prefault(sandboxSchema, {}),
  pool: z.prefault(poolSchema, {}),
  microvm: z.prefault(microvmSchema, {}),
  mcp: z.prefault(mcpSchema, {}),
  approval: z.prefault(approvalSchema, {}),
  audit: z.prefault(auditSchema, {}),
  agent: z.prefault(agentSchema, {}),
  daemon: z.prefault(daemonSchema, {}),
});

export type Config = z.infer<typeof configSchema>;
export type SandboxConfig = z.infer<typeof sandboxSchema>;
export type MicrovmConfig = z.infer<typeof microvmSchema>;
export type McpConfig = z.infer<typeof mcpSchema>;
export type StdioServerConfig = z.infer<typeof stdioServerSchema>;
export type HttpServerConfig = z.infer<typeof httpServerSchema>;
export type McpServerConfig = StdioServerConfig | HttpServerConfig;

/** The SandboxSpec the backends take, from the validated sandbox config. */
export function toSandboxSpec(c: SandboxConfig): SandboxSpec {
  return {
    backend: c.backend,
    limits: { memoryBytes: c.limits.memory, pids: c.limits.pids, cpus: c.limits.cpus, diskBytes: c.limits.disk },
    seccomp: { level: c.seccomp.level, mode: c.seccomp.mode },
    network: c.network,
    workspace: c.workspace,
    maxFileBytes: c.maxFileBytes,
    mounts: c.mounts,
  };
}
