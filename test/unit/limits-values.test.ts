import { describe, expect, it } from "vitest";
import { limitValues, limitWrites, validateSandboxId } from "../../src/policy/limits/values.js";
import { createSandboxCgroup, LimitsError } from "../../src/policy/limits/index.js";
import { hasCode } from "../../src/errors.js";

const MiB = 1024 * 1024;
const ok = { memoryBytes: 64 * MiB, pids: 16, cpus: 0.2 };

describe("limitValues", () => {
  it("computes the CFS quota over a 100 ms period", () => {
    expect(limitValues(ok)).toEqual({ memoryBytes: 64 * MiB, pidsMax: 16, cpuQuotaUs: 20_000, cpuPeriodUs: 100_000 });
    expect(limitValues({ ...ok, cpus: 1.5 }).cpuQuotaUs).toBe(150_000);
    expect(limitValues({ ...ok, cpus: 0.01 }).cpuQuotaUs).toBe(1_000);
    expect(limitValues({ ...ok, cpus: 1 / 3 }).cpuQuotaUs).toBe(33_333);
  });

  it.each([
    ["memory below 4 MiB", { memoryBytes: 4 * MiB - 1 }, "memoryBytes"],
    ["fractional memory", { memoryBytes: 64 * MiB + 0.5 }, "memoryBytes"],
    ["NaN memory", { memoryBytes: NaN }, "memoryBytes"],
    ["zero pids", { pids: 0 }, "pids"],
    ["too many pids", { pids: 5_000_000 }, "pids"],
    ["zero cpus", { cpus: 0 }, "cpus"],
    ["negative cpus", { cpus: -1 }, "cpus"],
    ["infinite cpus", { cpus: Infinity }, "cpus"],
    ["a quota below the kernel's 1 ms", { cpus: 0.004 }, "cpus"],
  ])("rejects %s with E_LIMITS_INVALID", (_name, patch, field) => {
    let err: unknown;
    try {
      limitValues({ ...ok, ...patch });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LimitsError);
    expect(hasCode(err, "E_LIMITS_INVALID")).toBe(true);
    expect((err as LimitsError).details).toMatchObject({ field });
  });
});

describe("limitWrites", () => {
  const v = limitValues(ok);

  it("writes v1 memory before memsw, and period before quota", () => {
    const chains = limitWrites(1, v).map((c) => c.map((w) => `${w.file}=${w.value}${w.optional ? "?" : ""}`));
    expect(chains).toEqual([
      [`memory.limit_in_bytes=${64 * MiB}`, `memory.memsw.limit_in_bytes=${64 * MiB}?`],
      ["memory.swappiness=0?"],
      ["pids.max=16"],
      ["cpu.cfs_period_us=100000", "cpu.cfs_quota_us=20000"],
    ]);
  });

  it("writes v2 memory.max, swap off, pids.max and cpu.max", () => {
    const chains = limitWrites(2, v).map((c) => c.map((w) => `${w.file}=${w.value}${w.optional ? "?" : ""}`));
    expect(chains).toEqual([[`memory.max=${64 * MiB}`], ["memory.swap.max=0?"], ["pids.max=16"], ["cpu.max=20000 100000"]]);
  });
});

describe("sandbox ids", () => {
  it.each(["sb-0123abcd", "a", "x.y_z-1"])("accepts %s", (id) => expect(() => validateSandboxId(id)).not.toThrow());
  it.each(["", "..", "../x", "a/b", "-x", ".hidden", "a b", "x".repeat(129)])("rejects %j", (id) => {
    expect(() => validateSandboxId(id)).toThrow(/Invalid sandbox id/);
  });

  it("createSandboxCgroup validates before touching any cgroup", async () => {
    await expect(createSandboxCgroup("../escape", ok)).rejects.toMatchObject({ code: "E_LIMITS_INVALID" });
    await expect(createSandboxCgroup("sb-x", { ...ok, memoryBytes: 1 })).rejects.toMatchObject({ code: "E_LIMITS_INVALID" });
  });
});
