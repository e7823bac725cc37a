/**
 * cgroup limits seen through the namespace backend: a runaway sandbox ends in a
 * typed error, and a neighbour running at the same time is unaffected.
 */
import { afterEach, describe, expect, it } from "vitest";
import { NamespaceBackend } from "../../src/sandbox/namespace/backend.js";
import { collect } from "../../src/sandbox/collect.js";
import { parseConfig } from "../../src/config/load.js";
import { toSandboxSpec } from "../../src/config/schema.js";
import type { Sandbox } from "../../src/sandbox/types.js";
import { announceSkip, hasPython, namespaceSkipReason } from "../helpers/capabilities.js";
import { namespaceLeftovers } from "../helpers/leftovers.js";

const skip = namespaceSkipReason() ?? (hasPython ? undefined : "python3 is not installed");
announceSkip("namespace limits", skip);

const spec = (limits: Record<string, unknown>) => toSandboxSpec(parseConfig({ sandbox: { limits } }).sandbox);

describe.skipIf(skip !== undefined)("namespace sandbox limits", () => {
  const backend = new NamespaceBackend();
  const made: Sandbox[] = [];
  afterEach(async () => {
    await Promise.all(made.map((s) => s.destroy()));
    expect(await namespaceLeftovers(made.map((s) => s.id))).toEqual([]);
    made.length = 0;
  });
  const create = async (limits: Record<string, unknown>): Promise<Sandbox> => {
    const sb = await backend.create(spec(limits));
    made.push(sb);
    return sb;
  };

  it("ends a memory hog with E_OOM while a neighbour keeps working", async () => {
    const [hog, neighbour] = await Promise.all([create({ memory: "64M" }), create({ memory: "256M" })]);
    const steady = collect(neighbour.exec(["python3", "-c", "import time\nb = bytearray(32*1024*1024)\nfor i in range(10): time.sleep(0.1)\nprint('neighbour ok')"]));
    const err = await collect(hog.exec(["python3", "-c", "b = bytearray(300 * 1024 * 1024); print('allocated')"])).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "E_OOM" });
    expect((err as Error).message).toMatch(/memory/);
    const ok = await steady;
    expect(ok.stdout.toString()).toBe("neighbour ok\n");
    expect(ok.result.exitCode).toBe(0);
    // The sandbox itself survives its OOM: the next command runs.
    expect((await collect(hog.exec(["true"]))).result.exitCode).toBe(0);
  });

  it("ends a fork bomb with E_PIDS_LIMIT while a neighbour keeps working", async () => {
    const [bomb, neighbour] = await Promise.all([create({ pids: 16 }), create({ pids: 64 })]);
    const err = await collect(bomb.exec(["sh", "-c", "i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done; wait"], { timeoutMs: 15_000 })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "E_PIDS_LIMIT" });
    const ok = await collect(neighbour.exec(["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do true & done; wait; echo fine"]));
    expect(ok.stdout.toString()).toBe("fine\n");
  });

  it("runs far more commands back to back than its process limit, and the limit still holds after them", async () => {
    // Each command is a bwrap run with its own pid namespace; on some kernels (6.18, cgroup v1
    // pids) its pid charge is released ~2 s after it ended, so without allowUnreleasedPids the
    // 17th quick command here failed with E_PIDS_LIMIT.
    const sb = await create({ pids: 16 });
    for (let i = 0; i < 48; i++) {
      const r = await collect(sb.exec(["true"]));
      expect(r.result.exitCode, `command ${i + 1} of 48`).toBe(0);
    }
    const err = await collect(sb.exec(["sh", "-c", "i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done; wait"], { timeoutMs: 15_000 })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "E_PIDS_LIMIT" });
  });

  it("applies the CPU quota to the whole sandbox", async () => {
    const sb = await create({ cpus: 0.2 });
    const r = await collect(sb.exec(["python3", "-c", "import time, os\nend = time.time() + 1.0\nwhile time.time() < end: pass\nt = os.times(); print(t.user + t.system)"]));
    const cpuSeconds = Number(r.stdout.toString());
    // 0.2 of a core for ~1 s of wall time; generous bound for noisy machines.
    expect(cpuSeconds).toBeGreaterThan(0);
    expect(cpuSeconds).toBeLessThan(0.45);
  });
});
