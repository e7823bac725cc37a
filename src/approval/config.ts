/**
 * The `approval` section of the config file. Embed with
 * `approval: z.prefault(approvalSchema, {})` in src/config/schema.ts.
 */
import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";
import { userRuleSchema } from "./user-rules.js";

z.config(en());

const absolute = z.string().check(z.refine((p) => p.startsWith("/"), { message: "workspace roots are absolute paths, like \"/workspace\"" }));

/** Validates and defaults the approval config. */
export const approvalSchema = z.strictObject({
  /** Who decides red calls. "auto": the hub picks (elicitation if the client supports it, a terminal if there is one, else api). */
  approver: z._default(z.enum(["auto", "terminal", "policy", "elicitation", "api"]), "auto"),
  /** How long a red call waits for a decision before it is denied. */
  timeoutSeconds: z._default(z.number().check(z.int(), z.gte(1, "timeoutSeconds must be at least 1"), z.lte(86_400, "timeoutSeconds must be at most 86400 (a day)")), 120),
  /** For the policy approver: globs on "server__tool" allowed without a person. */
  policy: z._default(z.strictObject({ allow: z._default(z.array(z.string().check(z.minLength(1))), []) }), { allow: [] }),
  /** User rules, first match wins; they override every built-in classification. */
  rules: z._default(z.array(userRuleSchema), []),
  /** Directories tools may touch without a path being a red sign. */
  workspaceRoots: z._default(z.array(absolute).check(z.minLength(1, "list at least one workspace root")), ["/workspace"]),
});

/** The validated approval config. */
export type ApprovalConfig = z.infer<typeof approvalSchema>;
