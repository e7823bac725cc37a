/** The warm pool over real namespace sandboxes: bounded, leak-free under a burst. */
import { describe, expect, it } from "vitest";
import { NamespaceBackend } from "../../src/sandbox/namespace/backend.js";
import { SandboxPool } from "../../src/sandbox/pool.js";
import { collect } from "../../src/sandbox/collect.js";
import { parseConfig } from "../../src/config/load.js";
import { toSandboxSpec } from "../../src/config/schema.js";
import { SandboxError } from "../../src/sandbox/errors.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { namespaceLeftovers } from "../helpers/leftovers.js";

const skip = namespaceSkipReason();
announceSkip("namespace pool", skip);

describe.skipIf(skip !== undefined)("warm pool of namespace sandboxes", () => {
  it("serves 200 concurrent leases with max=8: each completes or gets E_POOL_FULL, and nothing leaks", async () => {
    const ids: string[] = [];
    const pool = new SandboxPool({
      backend: new NamespaceBackend(),
      spec: toSandboxSpec(parseConfig({}).sandbox),
      min: 2,
      max: 8,
      maxQueue: 100,
      onEvent: (e) => void (e.type === "spawned" && ids.push(e.sandboxId)),
    });
    await pool.start();
    expect(pool.stats().idle).toBe(2);
    let peakActive = 0;
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, async () => {
        try {
          const lease = await pool.lease({ timeoutMs: 120_000 });
          const s = pool.stats();
          peakActive = Math.max(peakActive, s.active + s.idle);
          const r = await collect(lease.sandbox.exec(["true"]));
          await lease.release();
          return r.result.exitCode === 0 ? "done" : `exit ${r.result.exitCode}: ${r.stderr.toString().trim()}`;
        } catch (err) {
          if (err instanceof SandboxError && err.code === "E_POOL_FULL") return "full";
          throw err;
        }
      }),
    );
    expect(outcomes.filter((o) => o !== "done" && o !== "full")).toEqual([]);
    const done = outcomes.filter((o) => o === "done").length;
    const full = outcomes.filter((o) => o === "full").length;
    expect(done + full).toBe(200);
    expect(done).toBeGreaterThanOrEqual(100);
    expect(full).toBeGreaterThan(0);
    expect(peakActive).toBeLessThanOrEqual(8);
    const s = pool.stats();
    expect(s.hits + s.misses).toBe(done);
    expect(s.spawnMs.p50).toBeGreaterThan(0);
    await pool.close();
    const after = pool.stats();
    expect([after.active, after.idle, after.queued, after.leased]).toEqual([0, 0, 0, 0]);
    expect(ids.length).toBe(s.spawned);
    expect(await namespaceLeftovers(ids)).toEqual([]);
  }, 120_000);
});
