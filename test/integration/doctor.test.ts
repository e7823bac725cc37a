// `luminaguard doctor` against the real host: the checks must tell the truth about this machine.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { allProbes, readiness, runAllProbes } from "../../src/sandbox/probes.js";
import { PROBE_TIMEOUT_MS, type ProbeResult } from "../../src/probe.js";
import { parseCpuFlags, cpuVirtualization, KVM_DEVICE } from "../../src/sandbox/microvm/probe.js";
import { NETNS_PROBE_PREFIX } from "../../src/policy/firewall/probe.js";
import { doctorCommand } from "../../src/cli/doctor.js";

const root = process.getuid?.() === 0;
if (!root) console.warn("doctor integration: not root, so the cgroup, setpriv and network-namespace checks are skipped");

let results: ProbeResult[] = [];
let elapsedMs = 0;
let runtimeDir: string;
const savedRuntimeDir = process.env.LUMINAGUARD_RUNTIME_DIR;
const byId = (id: string): ProbeResult => {
  const r = results.find((x) => x.id === id);
  if (!r) throw new Error(`no result for ${id}`);
  return r;
};

function netnsLeftovers(): string[] {
  const fromDir = existsSync("/run/netns") ? readdirSync("/run/netns") : [];
  let fromIp: string[] = [];
  try {
    fromIp = execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n").map((l) => l.split(" ")[0] ?? "");
  } catch {
    // no ip: the directory listing is enough
  }
  return [...fromDir, ...fromIp].filter((n) => n.startsWith(NETNS_PROBE_PREFIX));
}

beforeAll(async () => {
  // NamespaceHost writes its passwd/group files here; keep them out of the real runtime dir.
  runtimeDir = mkdtempSync(join(tmpdir(), "lg-doctor-"));
  process.env.LUMINAGUARD_RUNTIME_DIR = runtimeDir;
  const started = performance.now();
  results = await runAllProbes();
  elapsedMs = performance.now() - started;
});

afterAll(() => {
  if (savedRuntimeDir === undefined) delete process.env.LUMINAGUARD_RUNTIME_DIR;
  else process.env.LUMINAGUARD_RUNTIME_DIR = savedRuntimeDir;
  rmSync(runtimeDir, { recursive: true, force: true });
});

describe("doctor on this host", () => {
  it("runs every probe, in parallel, within the time box", () => {
    expect(results.map((r) => r.id)).toEqual(allProbes().map((p) => p.id));
    // Parallel: the whole run takes about as long as the slowest probe, never the sum.
    expect(elapsedMs).toBeLessThan(PROBE_TIMEOUT_MS + 1_000);
    for (const r of results) {
      expect(r.detail, r.id).not.toBe("");
      expect(r.detail, r.id).not.toMatch(/did not finish within/);
      if (r.status === "warn" || r.status === "fail") expect(r.fix, `${r.id} must say how to fix it`).toBeTruthy();
    }
  });

  it("finds bubblewrap and working user namespaces", () => {
    expect(byId("namespace.bwrap")).toMatchObject({ status: "ok", detail: expect.stringMatching(/^bubblewrap \d+\.\d+/) as unknown });
    expect(byId("namespace.userns").status).toBe("ok");
  });

  it("finds seccomp filters with the log action", () => {
    expect(byId("seccomp.filter").status).toBe("ok");
    expect(byId("seccomp.log").status).toBe("ok");
    expect(readFileSync("/proc/sys/kernel/seccomp/actions_avail", "utf8")).toContain("log");
  });

  it.skipIf(!root)("finds setpriv and writable cgroups with memory, pids and cpu (root)", () => {
    expect(byId("namespace.setpriv").status).toBe("ok");
    expect(byId("namespace.disk")).toMatchObject({ status: "ok", detail: expect.stringMatching(/size-limited tmpfs per sandbox/) as unknown });
    expect(byId("limits.cgroups")).toMatchObject({ status: "ok", detail: expect.stringMatching(/^cgroup v[12], writable/) as unknown });
    expect(byId("limits.controllers").status).toBe("ok");
  });

  it("classifies KVM consistently with /proc/cpuinfo", () => {
    const kvm = byId("microvm.kvm");
    const { extension } = cpuVirtualization(parseCpuFlags(readFileSync("/proc/cpuinfo", "utf8")));
    if (kvm.status === "ok") {
      // Hardware is claimed only with VMX/SVM (on x86).
      expect(process.arch !== "x64" || extension !== undefined).toBe(true);
      expect(kvm.detail).toMatch(/^KVM: hardware/);
    } else {
      expect(kvm.status).toBe("warn");
      expect(kvm.detail).toMatch(/QEMU TCG/);
      if (existsSync(KVM_DEVICE) && extension === undefined && process.arch === "x64") {
        expect(kvm.detail).toContain("KVM device present but no VMX/SVM: nested/emulated");
      }
      if (!existsSync(KVM_DEVICE)) expect(kvm.detail).toMatch(/^no \/dev\/kvm/);
    }
    const ready = readiness(results).microvm;
    if (byId("microvm.qemu").status === "ok") expect(ready).toBe(kvm.status === "ok" ? "kvm" : "tcg");
    else expect(ready).toBe(false);
  });

  it.skipIf(!root)("creates a network namespace and leaves none behind (root)", () => {
    expect(byId("firewall.netns").status).toBe("ok");
    expect(byId("firewall.nft").status).toBe("ok");
    expect(netnsLeftovers()).toEqual([]);
  });

  it("says the namespace backend is ready", () => {
    expect(readiness(results).namespace).toBe(true);
  });

  it("prints JSON and exits 0 through the command", async () => {
    let out = "";
    const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    const savedExit = process.exitCode;
    try {
      await doctorCommand().parseAsync(["--json"], { from: "user" });
      expect(process.exitCode).toBe(0);
    } finally {
      write.mockRestore();
      process.exitCode = savedExit;
    }
    const doc = JSON.parse(out) as { probes: ProbeResult[]; ready: { namespace: boolean } };
    expect(doc.probes.length).toBe(allProbes().length);
    expect(doc.ready.namespace).toBe(true);
    if (root) expect(netnsLeftovers()).toEqual([]);
  });
});
