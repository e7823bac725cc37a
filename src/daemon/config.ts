/**
 * The `daemon` section of the config file. Embed with
 * `daemon: z.prefault(daemonSchema, {})` in src/config/schema.ts.
 */
import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";

z.config(en());

const int = (min: number, max: number) => z.number().check(z.int(), z.gte(min), z.lte(max));

/** A token bucket: `perSecond` tokens refill each second, at most `burst` saved up. */
const bucketSchema = (perSecond: number, burst: number) =>
  z._default(
    z.strictObject({
      perSecond: z.number().check(z.positive("rate limits must be positive (tokens per second)"), z.lte(1_000_000)),
      burst: int(1, 1_000_000),
    }),
    { perSecond, burst },
  );

/** Event names a webhook subscribes to: exact ("approval.added") or a prefix glob ("task.*", "*"). */
const eventPattern = z.string().check(z.regex(/^(\*|[a-z][a-z-]*(\.[a-z][a-z-]*)*(\.\*)?)$/, "webhook events are names like \"approval.added\", or \"task.*\", or \"*\""));

export const webhookSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: "webhook url must be an http:// or https:// URL" }),
  events: z.array(eventPattern).check(z.minLength(1, "list at least one event (\"task.*\", \"approval.*\")")),
  /** HMAC-SHA256 key; receivers check X-LuminaGuard-Signature with it. */
  secret: z.string().check(z.minLength(16, "webhook secrets must be at least 16 characters")),
});

export const daemonSchema = z.strictObject({
  /** Unix socket path; default <runtimeDir>/daemon.sock. */
  socket: z.optional(z.string().check(z.refine((p) => p.startsWith("/"), "daemon.socket must be an absolute path"))),
  /** Optional loopback TCP listener; a bearer token is required for it. */
  tcp: z.optional(
    z.strictObject({
      port: int(0, 65_535),
      host: z._default(z.string().check(z.minLength(1)), "127.0.0.1"),
      token: z.string().check(z.minLength(16, "daemon.tcp.token must be at least 16 characters (e.g. `openssl rand -hex 24`)")),
    }),
  ),
  /** Per client and per kind of request. */
  rateLimits: z._default(
    z.strictObject({
      api: bucketSchema(50, 200),
      sandboxSpawn: bucketSchema(2, 20),
      approval: bucketSchema(5, 30),
    }),
    { api: { perSecond: 50, burst: 200 }, sandboxSpawn: { perSecond: 2, burst: 20 }, approval: { perSecond: 5, burst: 30 } },
  ),
  webhooks: z._default(z.array(webhookSchema), []),
  /** How deliveries are retried before a payload goes to the dead-letter list. */
  webhookRetry: z._default(
    z.strictObject({
      attempts: int(1, 20),
      baseMs: int(1, 60_000),
      maxMs: int(1, 3_600_000),
      timeoutMs: int(100, 120_000),
    }),
    { attempts: 5, baseMs: 500, maxMs: 30_000, timeoutMs: 10_000 },
  ),
  /** How long shutdown waits for in-flight requests before cutting them off. */
  shutdownTimeoutSeconds: z._default(z.number().check(z.gte(0), z.lte(3_600)), 10),
});

/** The validated `daemon` section. */
export type DaemonConfig = z.infer<typeof daemonSchema>;
export type WebhookConfig = z.infer<typeof webhookSchema>;
export type RateLimitKind = keyof DaemonConfig["rateLimits"];
