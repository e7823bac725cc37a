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
import { networkPolicySchema } from "../policy/firewall/policy.js";

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

export const configSchema = z.strictObject({
  sandbox: z.prefault(sandboxSchema, {}),
  pool: z.prefault(poolSchema, {}),
  microvm: z.prefault(microvmSchema, {}),
});

export type Config = z.infer<typeof configSchema>;
export type SandboxConfig = z.infer<typeof sandboxSchema>;
export type MicrovmConfig = z.infer<typeof microvmSchema>;

/** The SandboxSpec the backends take, from the validated sandbox config. */
export function toSandboxSpec(c: SandboxConfig): SandboxSpec {
  return {
    backend: c.backend,
    limits: { memoryBytes: c.limits.memory, pids: c.limits.pids, cpus: c.limits.cpus },
    seccomp: { level: c.seccomp.level, mode: c.seccomp.mode },
    network: c.network,
    workspace: c.workspace,
    maxFileBytes: c.maxFileBytes,
  };
}
