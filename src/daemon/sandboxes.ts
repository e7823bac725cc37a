/**
 * Sandboxes made through the API: leased from a warm pool per spec (the
 * config's default spec is kept warm; other specs get a pool that only counts),
 * held by id until the client deletes them or the daemon stops.
 */
import type { Config } from "../config/schema.js";
import { sandboxSchema, toSandboxSpec, type SandboxConfig } from "../config/schema.js";
import { createBackend } from "../sandbox/backends.js";
import { SandboxPool, type Lease, type PoolEvent, type PoolStats } from "../sandbox/pool.js";
import type { Backend, BackendName, Sandbox, SandboxSpec } from "../sandbox/types.js";
import { DaemonError, badRequest, notFound } from "./errors.js";

/** A sandbox as `GET /v1/sandboxes` shows it. */
export interface SandboxInfo {
  id: string;
  backend: BackendName;
  createdAt: string;
  ageSeconds: number;
  limits: SandboxSpec["limits"];
  network: "none" | "allow-list";
  seccomp: SandboxSpec["seccomp"];
  maxFileBytes: number;
  /** Served warm from the pool (true) or created for this request. */
  warm: boolean;
}

/** Keys an API client may not set: they name host paths or host uids, which only the config may. */
const HOST_KEYS = ["workspace", "mounts", "uid"] as const;
/** Most distinct specs with their own pool, so clients cannot make pools without bound. */
const MAX_POOLS = 16;

export interface DaemonSandboxesOptions {
  config: Config;
  /** Every pool event, with the pool's backend (metrics, the event stream). */
  onPoolEvent?: (event: PoolEvent, backend: BackendName) => void;
  /** Make a backend (tests pass a fake); default createBackend. */
  backend?: (name: BackendName) => Promise<Backend>;
}

interface Held {
  lease: Lease;
  createdAt: Date;
}

/** The daemon's API sandboxes and their pools. */
export class DaemonSandboxes {
  readonly #opts: DaemonSandboxesOptions;
  readonly #defaultSpec: SandboxSpec;
  readonly #pools = new Map<string, SandboxPool>();
  readonly #backends = new Map<BackendName, Promise<Backend>>();
  readonly #held = new Map<string, Held>();
  #closed = false;

  constructor(opts: DaemonSandboxesOptions) {
    this.#opts = opts;
    this.#defaultSpec = toSandboxSpec(opts.config.sandbox);
  }

  /** Start the default pool (warm `pool.min` sandboxes); resolves when the first fill settled. */
  async start(): Promise<void> {
    await (await this.#pool(this.#defaultSpec, true)).start();
  }

  /** The spec for a create request: the config's sandbox defaults with `overrides` laid over, validated by the config's schema. */
  specFor(overrides: unknown): SandboxSpec {
    if (overrides === undefined || overrides === null) return this.#defaultSpec;
    if (typeof overrides !== "object" || Array.isArray(overrides)) throw badRequest("The sandbox spec must be a JSON object of sandbox settings (as in the config's `sandbox` section).");
    const body = overrides as Record<string, unknown>;
    const forbidden = HOST_KEYS.filter((k) => k in body);
    if (forbidden.length > 0) throw badRequest(`${forbidden.join(", ")} cannot be set through the API: host paths and uids come only from the config file (sandbox.${forbidden[0]}).`);
    const parsed = sandboxSchema.safeParse(body);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => (i.path.length > 0 ? `${i.message} (at ${i.path.join(".")})` : i.message));
      throw badRequest(`Invalid sandbox spec: ${issues.join("; ")}`, { issues });
    }
    // Only the keys the client named replace the config's: validated values, the config's defaults elsewhere.
    const base = this.#opts.config.sandbox;
    const merged: Record<string, unknown> = { ...base };
    for (const key of Object.keys(body) as (keyof SandboxConfig)[]) {
      const value = parsed.data[key];
      const given = body[key];
      merged[key] = (key === "limits" || key === "seccomp") && typeof given === "object" && given !== null ? { ...base[key], ...pick(value as object, Object.keys(given)) } : value;
    }
    return toSandboxSpec(merged as SandboxConfig);
  }

  /** Lease a sandbox for `spec` and hold it until destroy(). */
  async create(spec: SandboxSpec, signal?: AbortSignal): Promise<SandboxInfo> {
    this.#ensureOpen();
    const pool = await this.#pool(spec, false);
    const lease = await pool.lease(signal ? { signal } : {});
    if (this.#closed) {
      await lease.release();
      this.#ensureOpen();
    }
    this.#held.set(lease.sandbox.id, { lease, createdAt: new Date() });
    return this.#info(lease.sandbox.id)!;
  }

  /** A held sandbox; E_DAEMON_NOT_FOUND otherwise. */
  get(id: string): Sandbox {
    const held = this.#held.get(id);
    if (!held || held.lease.sandbox.destroyed) throw notFound(`Sandbox ${id}`, "it was destroyed or never existed; list sandboxes with GET /v1/sandboxes.");
    return held.lease.sandbox;
  }

  /** Every held sandbox. */
  list(): SandboxInfo[] {
    return [...this.#held.keys()].map((id) => this.#info(id)!);
  }

  /** Destroy a held sandbox (its pool refills in the background). */
  async destroy(id: string): Promise<void> {
    const held = this.#held.get(id);
    if (!held) throw notFound(`Sandbox ${id}`, "it was destroyed or never existed; list sandboxes with GET /v1/sandboxes.");
    this.#held.delete(id);
    await held.lease.release();
  }

  /** Stats of every pool, with its backend and whether it is the warm default. */
  poolStats(): { key: string; backend: BackendName; default: boolean; stats: PoolStats }[] {
    const defaultKey = specKey(this.#defaultSpec);
    return [...this.#pools.entries()].map(([key, pool]) => ({ key, backend: pool.spec.backend, default: key === defaultKey, stats: pool.stats() }));
  }

  /** Backends this daemon has started, with whether they came up. */
  async backends(): Promise<Record<string, "ready" | "failed">> {
    const out: Record<string, "ready" | "failed"> = {};
    for (const [name, b] of this.#backends) out[name] = await b.then(() => "ready" as const, () => "failed" as const);
    return out;
  }

  /** Allowed/denied connection counts of every held networked sandbox. */
  async networkStats(): Promise<{ firewallAllowed: number; firewallDenied: number; proxyAllowed: number; proxyDenied: number }> {
    const out = { firewallAllowed: 0, firewallDenied: 0, proxyAllowed: 0, proxyDenied: 0 };
    const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
    await Promise.all(
      [...this.#held.values()].map(async ({ lease }) => {
        const s = await lease.sandbox.network?.stats().catch(() => undefined);
        if (!s) return;
        out.firewallAllowed += s.firewall.allowedTotal;
        out.firewallDenied += s.firewall.deniedTotal;
        out.proxyAllowed += sum(s.proxy.allowed);
        out.proxyDenied += sum(s.proxy.denied);
      }),
    );
    return out;
  }

  /** Destroy every held sandbox, close the pools, then the backends. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const held = [...this.#held.values()];
    this.#held.clear();
    await Promise.all(held.map((h) => h.lease.release()));
    await Promise.all([...this.#pools.values()].map((p) => p.close()));
    this.#pools.clear();
    const backends = [...this.#backends.values()];
    this.#backends.clear();
    await Promise.all(backends.map(async (b) => (await b.catch(() => undefined))?.close?.()));
  }

  async #pool(spec: SandboxSpec, isDefault: boolean): Promise<SandboxPool> {
    const key = specKey(spec);
    const existing = this.#pools.get(key);
    if (existing) return existing;
    if (this.#pools.size >= MAX_POOLS) throw new DaemonError("E_DAEMON_TOO_MANY_SPECS", `The daemon already keeps ${MAX_POOLS} sandbox pools for distinct specs; use the config's default spec or one already in use, or restart the daemon.`);
    const backend = await this.#backend(spec.backend);
    // Re-check: another request may have made this pool while we awaited the backend.
    const raced = this.#pools.get(key);
    if (raced) return raced;
    const p = this.#opts.config.pool;
    const pool = new SandboxPool({
      backend,
      spec,
      min: isDefault ? p.min : 0,
      max: p.max,
      maxQueue: p.maxQueue,
      leaseTimeoutMs: p.leaseTimeoutMs,
      onEvent: (e) => this.#opts.onPoolEvent?.(e, spec.backend),
    });
    this.#pools.set(key, pool);
    return pool;
  }

  #backend(name: BackendName): Promise<Backend> {
    let b = this.#backends.get(name);
    if (!b) {
      const make = this.#opts.backend ?? ((n: BackendName) => createBackend(n, { sandboxUid: this.#opts.config.sandbox.uid, microvm: this.#opts.config.microvm }));
      b = make(name).then(async (backend) => {
        await backend.check();
        return backend;
      });
      this.#backends.set(name, b);
      // A failed backend is retried by the next request rather than cached as broken forever.
      b.catch(() => this.#backends.delete(name));
    }
    return b;
  }

  #info(id: string): SandboxInfo | undefined {
    const held = this.#held.get(id);
    if (!held) return undefined;
    const sb = held.lease.sandbox;
    return {
      id,
      backend: sb.backend,
      createdAt: held.createdAt.toISOString(),
      ageSeconds: Math.round((Date.now() - held.createdAt.getTime()) / 100) / 10,
      limits: sb.spec.limits,
      network: sb.spec.network === "none" ? "none" : "allow-list",
      seccomp: sb.spec.seccomp,
      maxFileBytes: sb.spec.maxFileBytes,
      warm: held.lease.hit,
    };
  }

  #ensureOpen(): void {
    if (this.#closed) throw new DaemonError("E_DAEMON_SHUTTING_DOWN", "The daemon is shutting down; start it again to create sandboxes.");
  }
}

function specKey(spec: SandboxSpec): string {
  return JSON.stringify(spec);
}

function pick(obj: object, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => keys.includes(k)));
}
