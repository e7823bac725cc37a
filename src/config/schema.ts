/**
 * The one schema for LuminaGuard's configuration. Everything from a config file,
 * the environment or the command line passes through here once, at the edge; the
 * rest of the code trusts the typed result.
 */
import { z } from "zod";
import { parseSize } from "./size.js";
import type { SandboxSpec } from "../sandbox/types.js";

const size = (what: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    try {
      return parseSize(v, what);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
      return z.NEVER;
    }
  });

export const limitsSchema = z
  .object({
    memory: size("memory limit").pipe(z.number().min(16 * 1024 * 1024, "memory limit must be at least 16M")).default(512 * 1024 * 1024),
    pids: z.number().int().min(4, "pids limit must be at least 4 (the launcher uses 2)").max(1_000_000).default(256),
    cpus: z.number().positive().max(1024).default(1),
  })
  .strict();

export const sandboxSchema = z
  .object({
    backend: z.enum(["namespace", "microvm", "gvisor"]).default("namespace"),
    limits: limitsSchema.prefault({}),
    seccomp: z
      .object({
        level: z.enum(["strict", "default", "permissive"]).default("default"),
        mode: z.enum(["enforce", "log"]).default("enforce"),
      })
      .strict()
      .prefault({}),
    network: z.literal("none").default("none"),
    workspace: z.string().min(1).optional(),
    maxFileBytes: size("file size limit").default(16 * 1024 * 1024),
    /** Host uid the sandbox runs as when LuminaGuard runs as root. */
    uid: z.number().int().min(1).max(2 ** 32 - 2).optional(),
  })
  .strict();

export const poolSchema = z
  .object({
    min: z.number().int().min(0).default(2),
    max: z.number().int().min(1).default(8),
    maxQueue: z.number().int().min(0).default(64),
    leaseTimeoutMs: z.number().int().positive().default(30_000),
  })
  .strict()
  .refine((p) => p.min <= p.max, { message: "pool.min must not exceed pool.max" });

export const configSchema = z
  .object({
    sandbox: sandboxSchema.prefault({}),
    pool: poolSchema.prefault({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type SandboxConfig = z.infer<typeof sandboxSchema>;

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
