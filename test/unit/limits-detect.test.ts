import { describe, expect, it } from "vitest";
import { analyzeCgroups, type DetectProbe } from "../../src/policy/limits/detect.js";

const HYBRID_MOUNTINFO = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_SELF = "8:pids:/\n6:freezer:/\n4:memory:/process_api/e979\n2:cpuacct:/\n1:cpu:/\n0::/\n";
const V2_MOUNTINFO = "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
const SCOPE = "/user.slice/user-1000.slice/user@1000.service/app.slice/lg.scope";
const V2_SELF = `0::${SCOPE}\n`;
const DIR = `/sys/fs/cgroup${SCOPE}`;

/** A fake cgroupfs: file contents by path, plus the set of writable paths. */
function probe(files: Record<string, string>, writable: string[] = Object.keys(files).map((f) => f.replace(/\/[^/]+$/, ""))): DetectProbe {
  const w = new Set([...writable, ...Object.keys(files)]);
  return {
    read: (p) => Promise.resolve(files[p]),
    writable: (p) => Promise.resolve(w.has(p)),
  };
}

const v2Files = (extra: Record<string, string>) => ({
  [`${DIR}/cgroup.controllers`]: "cpuset cpu io memory pids\n",
  [`${DIR}/cgroup.subtree_control`]: "\n",
  [`${DIR}/cgroup.type`]: "domain\n",
  [`${DIR}/cgroup.procs`]: "",
  ...extra,
});

describe("analyzeCgroups on a hybrid (v1) host", () => {
  it("uses v1 hierarchies under our own cgroup and explains why not v2", async () => {
    const files = {
      "/sys/fs/cgroup/unified/cgroup.controllers": "hugetlb\n",
      "/sys/fs/cgroup/memory/process_api/e979/cgroup.procs": "1\n",
    };
    const host = await analyzeCgroups(
      { mountinfo: HYBRID_MOUNTINFO, selfCgroup: HYBRID_SELF, pid: 1 },
      probe(files, ["/sys/fs/cgroup/memory/process_api/e979", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/freezer"]),
    );
    expect(host.version).toBe(1);
    expect(host.writable).toBe(true);
    expect(host.hierarchies.map((h) => [h.controllers.join(","), h.base])).toEqual([
      ["memory", "/sys/fs/cgroup/memory/process_api/e979"],
      ["pids", "/sys/fs/cgroup/pids"],
      ["cpu", "/sys/fs/cgroup/cpu"],
      ["cpuacct", "/sys/fs/cgroup/cpuacct"],
      ["freezer", "/sys/fs/cgroup/freezer"],
    ]);
  });

  it("merges co-mounted cpu,cpuacct into one hierarchy and tolerates a missing freezer", async () => {
    const mountinfo = `31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
38 30 0:35 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
`;
    const host = await analyzeCgroups(
      { mountinfo, selfCgroup: "3:pids:/a\n2:memory:/a\n1:cpu,cpuacct:/a\n", pid: 1 },
      probe({}, ["/sys/fs/cgroup/memory/a", "/sys/fs/cgroup/pids/a", "/sys/fs/cgroup/cpu,cpuacct/a"]),
    );
    expect(host.writable).toBe(true);
    expect(host.hierarchies.find((h) => h.controllers.includes("cpuacct"))).toMatchObject({ controllers: ["cpu", "cpuacct"], base: "/sys/fs/cgroup/cpu,cpuacct/a" });
    expect(host.hierarchies).toHaveLength(3);
  });

  it("finds our cgroup through a container's bind-mounted subtree", async () => {
    const mountinfo = `34 30 0:31 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory
35 30 0:32 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
36 30 0:33 /docker/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
`;
    const self = "3:pids:/docker/abc\n2:memory:/docker/abc\n1:cpu:/docker/abc\n";
    const host = await analyzeCgroups({ mountinfo, selfCgroup: self, pid: 1 }, probe({}, ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu"]));
    // The memory mount is read-only (the usual unprivileged container), so nothing is writable.
    expect(host.writable).toBe(false);
    expect(host.version).toBe(1);
    expect(host.reason).toContain("/sys/fs/cgroup/memory is not writable");
  });

  it("reports both versions' reasons when nothing is usable", async () => {
    const host = await analyzeCgroups({ mountinfo: "", selfCgroup: "", pid: 1 }, probe({}));
    expect(host).toMatchObject({ writable: false, version: 2, hierarchies: [] });
    expect(host.reason).toMatch(/cgroup v2: .*; cgroup v1: .*memory controller is not mounted/);
  });
});

describe("analyzeCgroups on a cgroup v2 host", () => {
  const input = (pid = 4242) => ({ mountinfo: V2_MOUNTINFO, selfCgroup: V2_SELF, pid });

  it("uses our cgroup directly when it already delegates the controllers", async () => {
    const host = await analyzeCgroups(input(), probe(v2Files({ [`${DIR}/cgroup.subtree_control`]: "cpu memory pids\n" })));
    expect(host).toMatchObject({ version: 2, writable: true, vacateOwnCgroup: false });
    expect(host.hierarchies[0]).toMatchObject({ base: DIR, mountPoint: "/sys/fs/cgroup", controllers: ["memory", "pids", "cpu"] });
  });

  it("plans to move itself into a leaf when it is the only process in its cgroup", async () => {
    const host = await analyzeCgroups(input(), probe(v2Files({ [`${DIR}/cgroup.procs`]: "4242\n" })));
    expect(host).toMatchObject({ version: 2, writable: true, vacateOwnCgroup: true });
  });

  it("refuses a cgroup shared with other processes (no internal processes rule)", async () => {
    const host = await analyzeCgroups(input(), probe(v2Files({ [`${DIR}/cgroup.procs`]: "4242\n777\n" })));
    expect(host.writable).toBe(false);
    expect(host.reason).toContain("no internal processes");
    expect(host.reason).toContain("777");
  });

  it("accepts the root cgroup with processes (it is exempt from the rule)", async () => {
    const rootProbe = probe({ "/sys/fs/cgroup/cgroup.controllers": "cpu memory pids\n", "/sys/fs/cgroup/cgroup.subtree_control": "", "/sys/fs/cgroup/cgroup.procs": "1\n2\n" });
    const host = await analyzeCgroups({ mountinfo: V2_MOUNTINFO, selfCgroup: "0::/\n", pid: 2 }, rootProbe);
    expect(host).toMatchObject({ version: 2, writable: true, vacateOwnCgroup: false });
    expect(host.hierarchies[0]!.base).toBe("/sys/fs/cgroup");
  });

  it("uses the parent when we already sit in the supervisor leaf", async () => {
    const leafSelf = `0::${SCOPE}/luminaguard-supervisor\n`;
    const host = await analyzeCgroups({ mountinfo: V2_MOUNTINFO, selfCgroup: leafSelf, pid: 1 }, probe(v2Files({ [`${DIR}/cgroup.subtree_control`]: "memory pids cpu\n" })));
    expect(host).toMatchObject({ version: 2, writable: true });
    expect(host.hierarchies[0]!.base).toBe(DIR);
  });

  it("names missing controllers", async () => {
    const host = await analyzeCgroups(input(), probe(v2Files({ [`${DIR}/cgroup.controllers`]: "memory pids\n" })));
    expect(host.writable).toBe(false);
    expect(host.reason).toContain("does not offer the cpu controller");
  });

  it("refuses a cgroup we may not write to", async () => {
    const host = await analyzeCgroups(input(), probe(v2Files({}), []));
    expect(host.writable).toBe(false);
    expect(host.reason).toContain("not writable");
  });
});
