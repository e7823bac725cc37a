// Pure parts of `luminaguard doctor`: parsers and verdicts from fixture strings, the time box, rendering.
import { describe, expect, it } from "vitest";
import { compareVersions, parseVersion, runProbe, type Probe, type ProbeResult } from "../../src/probe.js";
import { judgeBwrapVersion } from "../../src/sandbox/namespace/probe.js";
import { cpuVirtualization, judgeKvm, judgeQemu, parseCpuFlags, parseQemuMachines, qemuTarget } from "../../src/sandbox/microvm/probe.js";
import { judgeRunsc, parseRunscVersion } from "../../src/sandbox/gvisor/probe.js";
import { judgeSeccompFilter, judgeSeccompLog, parseSeccompActions, parseSeccompStatus } from "../../src/policy/seccomp/probe.js";
import { judgeCgroups, judgeControllers, parseProcCgroups } from "../../src/policy/limits/probe.js";
import type { CgroupHost } from "../../src/policy/limits/index.js";
import { namespaceBlocker, readiness } from "../../src/sandbox/probes.js";
import { doctorJson, renderSummary, renderTable } from "../../src/cli/doctor.js";

const CPUINFO_PVM = `processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm

processor\t: 1
flags\t\t: fpu vme hypervisor
`;
const CPUINFO_INTEL_METAL = "processor\t: 0\nflags\t\t: fpu vme de pse vmx smx est tm2 ssse3\n";
const CPUINFO_AMD_NESTED = "processor\t: 0\nflags\t\t: fpu svm hypervisor lahf_lm\n";
const CPUINFO_ARM64 = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics\n";

describe("cpuinfo flags", () => {
  it("reads the first processor's flags (x86) and Features (arm64)", () => {
    const flags = parseCpuFlags(CPUINFO_PVM);
    expect(flags.has("hypervisor")).toBe(true);
    expect(flags.has("sse4_2")).toBe(true);
    expect(flags.has("vmx")).toBe(false);
    expect(parseCpuFlags(CPUINFO_ARM64).has("asimd")).toBe(true);
    expect(parseCpuFlags("").size).toBe(0);
  });

  it("classifies VMX, SVM and guests", () => {
    expect(cpuVirtualization(parseCpuFlags(CPUINFO_PVM))).toEqual({ extension: undefined, guest: true });
    expect(cpuVirtualization(parseCpuFlags(CPUINFO_INTEL_METAL))).toEqual({ extension: "vmx", guest: false });
    expect(cpuVirtualization(parseCpuFlags(CPUINFO_AMD_NESTED))).toEqual({ extension: "svm", guest: true });
  });
});

describe("KVM verdict", () => {
  it("does not call a PVM /dev/kvm without VMX/SVM hardware KVM", () => {
    const v = judgeKvm("ok", parseCpuFlags(CPUINFO_PVM), "x64");
    expect(v.status).toBe("warn");
    expect(v.detail).toContain("KVM device present but no VMX/SVM: nested/emulated (e.g. PVM)");
    expect(v.detail).toContain("QEMU TCG (slow but works)");
  });

  it("calls it hardware only with vmx or svm, and says when nested", () => {
    expect(judgeKvm("ok", parseCpuFlags(CPUINFO_INTEL_METAL), "x64")).toMatchObject({ status: "ok", detail: expect.stringContaining("KVM: hardware (vmx)") as unknown });
    expect(judgeKvm("ok", parseCpuFlags(CPUINFO_AMD_NESTED), "x64").detail).toMatch(/KVM: hardware \(svm\); nested/);
  });

  it("explains a missing, forbidden or broken device", () => {
    const missing = judgeKvm("missing", parseCpuFlags(CPUINFO_PVM), "x64");
    expect(missing).toMatchObject({ status: "warn" });
    expect(missing.fix).toMatch(/nested virtualization/);
    expect(judgeKvm("missing", parseCpuFlags(CPUINFO_INTEL_METAL), "x64").fix).toMatch(/modprobe kvm_intel/);
    expect(judgeKvm("denied", parseCpuFlags(CPUINFO_INTEL_METAL), "x64").fix).toMatch(/kvm group/);
    expect(judgeKvm({ error: "ENXIO" }, new Set(), "x64").detail).toContain("ENXIO");
  });

  it("trusts an opening /dev/kvm on arm64, whose cpuinfo has no such flag", () => {
    expect(judgeKvm("ok", parseCpuFlags(CPUINFO_ARM64), "arm64").status).toBe("ok");
  });
});

describe("version parsing", () => {
  it("finds dotted versions in tools' --version output", () => {
    expect(parseVersion("bubblewrap 0.8.0\n")).toBe("0.8.0");
    expect(parseVersion("nftables v1.0.6 (Lester Gooch #5)")).toBe("1.0.6");
    expect(parseVersion("setpriv from util-linux 2.38.1")).toBe("2.38.1");
    expect(parseVersion("no digits here")).toBeUndefined();
  });

  it("compares versions numerically", () => {
    expect(compareVersions("0.10.0", "0.8.0")).toBeGreaterThan(0);
    expect(compareVersions("0.8", "0.8.0")).toBe(0);
    expect(compareVersions("0.6.2", "0.8.0")).toBeLessThan(0);
  });

  it("needs bubblewrap 0.8 or later", () => {
    expect(judgeBwrapVersion("bubblewrap 0.8.0", "/usr/bin/bwrap")).toEqual({ status: "ok", detail: "bubblewrap 0.8.0 at /usr/bin/bwrap" });
    expect(judgeBwrapVersion("bubblewrap 0.11.0", "/usr/bin/bwrap").status).toBe("ok");
    const old = judgeBwrapVersion("bubblewrap 0.4.0", "/usr/bin/bwrap");
    expect(old.status).toBe("fail");
    expect(old.fix).toMatch(/Upgrade bubblewrap/);
    expect(judgeBwrapVersion("", "/usr/bin/bwrap").status).toBe("warn");
  });

  it("reads QEMU's version and machine list", () => {
    const machines = "Supported machines are:\nmicrovm              microvm (i386)\npc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)\nq35                  Standard PC (Q35 + ICH9, 2009)\nnone                 empty machine\n";
    expect(parseQemuMachines(machines)).toEqual(["microvm", "pc", "q35", "none"]);
    const version = "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022 Fabrice Bellard\n";
    expect(judgeQemu("/usr/bin/qemu-system-x86_64", version, machines, "microvm")).toEqual({ status: "ok", detail: "QEMU 7.2.22 at /usr/bin/qemu-system-x86_64; -M microvm available" });
    expect(judgeQemu("/q", version, "Supported machines are:\npc    Standard PC\n", "microvm").status).toBe("warn");
    expect(qemuTarget("x64")).toMatchObject({ binary: "qemu-system-x86_64", machine: "microvm" });
    expect(qemuTarget("arm64")).toMatchObject({ binary: "qemu-system-aarch64", machine: "virt" });
  });

  it("reads runsc's build name, upstream and Debian style", () => {
    expect(parseRunscVersion("runsc version release-20231009.0\nspec: 1.1.0\n")).toBe("release-20231009.0");
    expect(parseRunscVersion("runsc version 0.0~20221219.0\nspec: 1.0.2-dev\n")).toBe("0.0~20221219.0");
    expect(judgeRunsc("/usr/bin/runsc", "garbage").status).toBe("warn");
  });
});

describe("seccomp", () => {
  const ALL = "kill_process kill_thread trap errno user_notif trace log allow\n";

  it("parses /proc/self/status and actions_avail", () => {
    expect(parseSeccompStatus("Name:\tnode\nSeccomp:\t0\nSeccomp_filters:\t0\n")).toEqual({ mode: 0, filters: 0 });
    expect(parseSeccompStatus("Name:\tnode\nSeccomp:\t2\n")).toEqual({ mode: 2 });
    expect(parseSeccompStatus("Name:\tnode\n")).toBeUndefined();
    expect(parseSeccompActions(ALL)).toEqual(["kill_process", "kill_thread", "trap", "errno", "user_notif", "trace", "log", "allow"]);
  });

  it("judges filter support and the log action", () => {
    expect(judgeSeccompFilter("Seccomp:\t0\n", ALL).status).toBe("ok");
    expect(judgeSeccompFilter("Seccomp:\t2\nSeccomp_filters:\t1\n", ALL).detail).toMatch(/already filtered \(1 filter/);
    expect(judgeSeccompFilter("Name:\tx\n", ALL).status).toBe("fail");
    expect(judgeSeccompFilter("Seccomp:\t0\n", undefined).status).toBe("warn");
    expect(judgeSeccompFilter("Seccomp:\t0\n", "kill_thread trap allow").status).toBe("fail");
    expect(judgeSeccompLog(ALL).status).toBe("ok");
    expect(judgeSeccompLog("kill_process kill_thread trap errno trace allow").status).toBe("warn");
    expect(judgeSeccompLog(undefined).status).toBe("warn");
  });
});

describe("cgroups", () => {
  const v1: CgroupHost = {
    version: 1,
    writable: true,
    vacateOwnCgroup: false,
    hierarchies: [
      { controllers: ["memory"], mountPoint: "/sys/fs/cgroup/memory", ownPath: "/", base: "/sys/fs/cgroup/memory" },
      { controllers: ["pids"], mountPoint: "/sys/fs/cgroup/pids", ownPath: "/", base: "/sys/fs/cgroup/pids" },
      { controllers: ["cpu", "cpuacct"], mountPoint: "/sys/fs/cgroup/cpu,cpuacct", ownPath: "/", base: "/sys/fs/cgroup/cpu,cpuacct" },
    ],
  };
  const procCgroups = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\nmemory\t4\t34\t1\npids\t8\t1\t1\n";

  it("parses /proc/cgroups", () => {
    expect(parseProcCgroups("#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t1\t0\npids\t8\t1\t1\n")).toEqual(
      new Map([
        ["memory", false],
        ["pids", true],
      ]),
    );
  });

  it("says ok for a writable host and names the controllers", () => {
    expect(judgeCgroups(v1)).toMatchObject({ status: "ok", detail: expect.stringMatching(/^cgroup v1, writable/) as unknown });
    expect(judgeControllers(v1, parseProcCgroups(procCgroups))).toMatchObject({ status: "ok", detail: expect.stringContaining("cpu+cpuacct") as unknown });
  });

  it("fails with the reason and the hint when nothing is writable", () => {
    const host: CgroupHost = { version: 2, writable: false, reason: "cgroup v2: not writable; cgroup v1: not mounted", hierarchies: [], vacateOwnCgroup: false };
    const v = judgeCgroups(host);
    expect(v.status).toBe("fail");
    expect(v.detail).toContain("not writable");
    expect(v.fix).toMatch(/Delegate=yes/);
    expect(judgeControllers(host, parseProcCgroups(procCgroups)).status).toBe("skip");
  });

  it("fails when the kernel disabled a controller at boot", () => {
    const v = judgeControllers(v1, parseProcCgroups(procCgroups.replace("memory\t4\t34\t1", "memory\t0\t1\t0")));
    expect(v.status).toBe("fail");
    expect(v.fix).toContain("cgroup_enable=memory");
  });
});

describe("time box", () => {
  it("gives up on a hung probe with the probe's error status", async () => {
    const hung: Probe = { id: "x.hung", title: "hung", onError: "warn", run: () => new Promise(() => {}) };
    const r = await runProbe(hung, 50);
    expect(r).toMatchObject({ id: "x.hung", status: "warn", detail: "did not finish within 0.05 s" });
  });

  it("turns a throwing probe into a result", async () => {
    const broken: Probe = { id: "x.broken", title: "broken", onError: "fail", run: () => Promise.reject(new Error("boom")) };
    expect(await runProbe(broken, 1000)).toMatchObject({ status: "fail", detail: "the check itself failed: boom" });
  });

  it("aborts the probe's signal when time runs out", async () => {
    let aborted = false;
    const slow: Probe = {
      id: "x.slow",
      title: "slow",
      onError: "fail",
      run: (signal) =>
        new Promise((resolve) => {
          signal.addEventListener("abort", () => {
            aborted = true;
            resolve({ status: "ok", detail: "too late" });
          });
        }),
    };
    expect((await runProbe(slow, 30)).status).toBe("fail");
    expect(aborted).toBe(true);
  });
});

describe("rendering and readiness", () => {
  const results: ProbeResult[] = [
    { id: "namespace.bwrap", title: "bubblewrap", status: "ok", detail: "bubblewrap 0.8.0 at /usr/bin/bwrap" },
    { id: "namespace.userns", title: "user namespaces", status: "fail", detail: "unprivileged user namespaces are blocked on this host", fix: "sysctl -w kernel.unprivileged_userns_clone=1" },
    { id: "namespace.setpriv", title: "setpriv (drop root)", status: "skip", detail: "not running as root: nothing to drop" },
    { id: "microvm.kvm", title: "KVM acceleration", status: "warn", detail: "no /dev/kvm", fix: "accept TCG" },
    { id: "microvm.qemu", title: "QEMU", status: "ok", detail: "QEMU 7.2.22" },
  ];

  it("renders an aligned table with marks and fix lines, without colour codes", () => {
    expect(renderTable(results, { color: false })).toBe(
      [
        "✓ bubblewrap           bubblewrap 0.8.0 at /usr/bin/bwrap",
        "✗ user namespaces      unprivileged user namespaces are blocked on this host",
        "                       fix: sysctl -w kernel.unprivileged_userns_clone=1",
        "- setpriv (drop root)  not running as root: nothing to drop",
        "! KVM acceleration     no /dev/kvm",
        "                       fix: accept TCG",
        "✓ QEMU                 QEMU 7.2.22",
        "",
      ].join("\n"),
    );
  });

  it("derives readiness and names the first blocker", () => {
    const ready = readiness(results);
    expect(ready).toEqual({ namespace: false, microvm: "tcg", gvisor: false, firewall: false });
    expect(namespaceBlocker(results)?.id).toBe("namespace.userns");
    const summary = renderSummary(results, ready, { color: false });
    expect(summary.split("\n")[0]).toBe("namespace backend: not ready: user namespaces: unprivileged user namespaces are blocked on this host");
    expect(summary).not.toContain("\x1b[");
  });

  it("says ready when no needed check fails; KVM only when its probe is ok", () => {
    const fine = results.map((r) => (r.id === "namespace.userns" ? { ...r, status: "ok" as const } : r.id === "microvm.kvm" ? { ...r, status: "ok" as const } : r));
    const ready = readiness(fine);
    expect(ready).toMatchObject({ namespace: true, microvm: "kvm" });
    expect(renderSummary(fine, ready, { color: false })).toMatch(/^namespace backend: ready\n/);
  });

  it("prints { probes, ready } as JSON", () => {
    const doc = JSON.parse(doctorJson(results, readiness(results))) as { probes: ProbeResult[]; ready: unknown };
    expect(doc.probes).toHaveLength(results.length);
    expect(doc.ready).toEqual({ namespace: false, microvm: "tcg", gvisor: false, firewall: false });
  });
});
