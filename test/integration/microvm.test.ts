/**
 * The micro-VM backend on real QEMU with the real guest image: the shared
 * conformance and escape suites, then what only VMs have: snapshot clones that
 * must not share random state, crash handling, and the pool in front.
 */
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defineConformanceSuite, type ConformanceTarget } from "../conformance/suite.js";
import { defineEscapeSuite } from "../security/escape-suite.js";
import { MicrovmBackend } from "../../src/sandbox/microvm/backend.js";
import { MicrovmSandbox } from "../../src/sandbox/microvm/sandbox.js";
import { parseConfig } from "../../src/config/load.js";
import { toSandboxSpec } from "../../src/config/schema.js";
import { collect } from "../../src/sandbox/collect.js";
import { SandboxPool } from "../../src/sandbox/pool.js";
import type { Sandbox } from "../../src/sandbox/types.js";
import { announceSkip, microvmSkipReason } from "../helpers/capabilities.js";
import { microvmLeftovers } from "../helpers/leftovers.js";
import { eventually } from "../helpers/procs.js";

const skip = microvmSkipReason();
announceSkip("micro-VM backend", skip);

const spec = toSandboxSpec(parseConfig({ sandbox: { backend: "microvm", limits: { memory: "160M", pids: 64 } } }).sandbox);
// One backend for the file: the template is booted once (seconds under TCG) and every sandbox is a clone.
const shared = skip ? undefined : new MicrovmBackend({ prestarted: 1 });
// Boot the template before the timed tests: under TCG on a loaded 2-core host it takes 10-60 s.
beforeAll(async () => {
  if (shared) await (await shared.create(spec)).destroy();
}, 300_000);
afterAll(async () => {
  await shared?.close();
});

const target: ConformanceTarget = {
  name: "microvm",
  skip,
  backend: () => shared!,
  spec,
  leftovers: microvmLeftovers,
  processesWithMarker: (sb, marker) => (sb as MicrovmSandbox).processesMatching(marker),
};

defineConformanceSuite(target);
defineEscapeSuite(target);

const text = (b: Uint8Array): string => Buffer.from(b).toString("utf8");

/** The nice values of all threads of a process (field 19 of /proc/<pid>/task/<tid>/stat). */
const niceValues = (pid: number): Set<number> =>
  new Set(readdirSync(`/proc/${pid}/task`).map((tid) => Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").replace(/^.*\) /, "").split(" ")[16])));

describe.skipIf(skip !== undefined)("micro-VM snapshots", () => {
  const made: Sandbox[] = [];
  afterAll(async () => {
    await Promise.allSettled(made.map((s) => s.destroy()));
    expect(await microvmLeftovers(made.map((s) => s.id))).toEqual([]);
  });

  /** Random bytes, boot id and hostname a clone reports on its first command. */
  const identity = async (sb: Sandbox): Promise<string> =>
    text((await collect(sb.exec(["sh", "-c", "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; hostname; cat /proc/sys/kernel/random/boot_id"]))).stdout);

  /** Start `sleep 300` and wait until it runs; `ended` resolves to how the command ended (its error). */
  const sleeping = async (sb: MicrovmSandbox): Promise<{ ended: Promise<unknown> }> => {
    const ended = collect(sb.exec(["sleep", "300"])).then(
      () => undefined,
      (e: unknown) => e,
    );
    await eventually(async () => (await sb.processesMatching("sleep 300")) > 0, 10_000);
    return { ended }; // wrapped: an async function returning a promise would wait for it
  };

  it("reseeds every clone: two clones of one template never share random state or hostname", async () => {
    const [a, b] = await Promise.all([shared!.create(spec), shared!.create(spec)]);
    made.push(a, b);
    const [ia, ib] = await Promise.all([identity(a), identity(b)]);
    const [randA, hostA] = ia.split("\n");
    const [randB, hostB] = ib.split("\n");
    expect(randA).toMatch(/^[0-9a-f]{32}$/);
    expect(randA).not.toBe(randB);
    expect(hostA).toBe(a.id);
    expect(hostB).toBe(b.id);
    expect(shared!.stats().clonesServed).toBeGreaterThanOrEqual(2);
    // Prepared at nice 10, handed out at 0: every QEMU thread (the vCPUs run the guest).
    for (const sb of [a, b] as MicrovmSandbox[]) expect(niceValues(sb.vm.pid)).toEqual(new Set([0]));
  });

  it("ends a running command with E_VM_CRASHED when QEMU dies, and leaves nothing behind", async () => {
    const sb = (await shared!.create(spec)) as MicrovmSandbox;
    made.push(sb);
    const { ended: out } = await sleeping(sb);
    process.kill(sb.vm.pid, "SIGKILL");
    expect(await out).toMatchObject({ code: "E_VM_CRASHED" });
    expect(() => sb.exec(["true"])).toThrow(expect.objectContaining({ code: "E_VM_CRASHED" }));
    await sb.destroy();
    expect(await microvmLeftovers([sb.id])).toEqual([]);
  });

  it("ends a running command with E_GUEST_LOST when the guest stops answering while QEMU lives", async () => {
    const watchful = new MicrovmBackend({ prestarted: 0, heartbeat: { intervalMs: 200, timeoutMs: 1500 } });
    try {
      const sb = (await watchful.create(spec)) as MicrovmSandbox;
      made.push(sb);
      const { ended: out } = await sleeping(sb);
      // Freeze the guest's vCPUs: QEMU is alive, the agent cannot answer.
      await sb.vm.qmp.execute("stop");
      const started = Date.now();
      expect(await out).toMatchObject({ code: "E_GUEST_LOST" });
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(() => sb.exec(["true"])).toThrow(expect.objectContaining({ code: "E_GUEST_LOST" }));
      await sb.destroy();
      expect(await microvmLeftovers([sb.id])).toEqual([]);
    } finally {
      await watchful.close();
    }
  }, 120_000); // its own backend boots its own template

  it("refreshes a template that got too old in the background, serving the old one meanwhile", async () => {
    const refreshing = new MicrovmBackend({ prestarted: 0, templateMaxAgeMs: 3_000 });
    try {
      made.push(await refreshing.create(spec));
      const first = refreshing.stats().templates[0]!;
      await new Promise((r) => setTimeout(r, 3_500 - first.ageMs));
      // Too old now: this create is served by the old template and starts a new one.
      made.push(await refreshing.create(spec));
      const old = refreshing.stats().templates[0]!;
      expect(old.served).toBe(2);
      expect(await eventually(() => refreshing.stats().templates[0]!.served === 0, 180_000, 200)).toBe(true);
      made.push(await refreshing.create(spec));
      const s = refreshing.stats();
      expect(s.templates).toHaveLength(1);
      expect(s.templates[0]!.served).toBe(1);
      expect(s.clonesServed).toBe(3);
      expect(s.fallbacks).toBe(0);
      expect(s.restoreMs.p50).toBeGreaterThan(0);
    } finally {
      await refreshing.close();
    }
  }, 300_000); // two template boots under TCG

  it("fronted by the SandboxPool unchanged: leases are clones, released ones are destroyed", async () => {
    const ids: string[] = [];
    const pool = new SandboxPool({ backend: shared!, spec, min: 1, max: 3, maxQueue: 10, onEvent: (e) => void (e.type === "spawned" && ids.push(e.sandboxId)) });
    await pool.start();
    try {
      const results = await Promise.all(
        Array.from({ length: 4 }, async (_, i) => {
          const lease = await pool.lease({ timeoutMs: 60_000 });
          const r = await collect(lease.sandbox.exec(["sh", "-c", `echo lease-${i}`]));
          await lease.release();
          return text(r.stdout).trim();
        }),
      );
      expect(results.sort()).toEqual(["lease-0", "lease-1", "lease-2", "lease-3"]);
    } finally {
      await pool.close();
    }
    expect(await microvmLeftovers(ids)).toEqual([]);
  });
});
