import { describe, expect, it } from "vitest";
import { cgroupDirUnder, parseFlatKeyed, parseMountInfo, parseProcCgroup, parseProcs, parseProcStatStartTime, parseSingleValue } from "../../src/policy/limits/parse.js";
import { ownerName, parseOwnerName } from "../../src/policy/limits/owner.js";

// The project's CI host: cgroup v1 controllers plus an empty cgroup2 at /sys/fs/cgroup/unified.
const HYBRID_MOUNTINFO = `22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_SELF_CGROUP = `9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/e979f736
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;
// A systemd machine with cgroup v2 only (optional field "shared:4" before the separator).
const V2_MOUNTINFO = `25 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

describe("parseMountInfo", () => {
  it("reads cgroup v1 and v2 mounts with their controllers", () => {
    const m = parseMountInfo(HYBRID_MOUNTINFO);
    const mem = m.find((e) => e.mountPoint === "/sys/fs/cgroup/memory")!;
    expect(mem).toMatchObject({ root: "/", fsType: "cgroup", readOnly: false });
    expect(mem.superOptions).toContain("memory");
    expect(m.find((e) => e.fsType === "cgroup2")!.mountPoint).toBe("/sys/fs/cgroup/unified");
  });

  it("handles optional fields, read-only mounts and octal escapes", () => {
    const text = `35 24 0:30 /docker/abc /sys/fs/cgroup/my\\040dir ro,nosuid shared:9 master:2 - cgroup2 cgroup2 rw\n`;
    const [e] = parseMountInfo(text);
    expect(e).toEqual({ root: "/docker/abc", mountPoint: "/sys/fs/cgroup/my dir", fsType: "cgroup2", superOptions: ["rw"], readOnly: true });
    expect(parseMountInfo(V2_MOUNTINFO)[1]!.superOptions).toEqual(["rw", "nsdelegate", "memory_recursiveprot"]);
  });

  it("skips malformed lines", () => {
    expect(parseMountInfo("garbage\n\n1 2 3\n")).toEqual([]);
  });
});

describe("parseProcCgroup", () => {
  it("reads v1 lines, named hierarchies and the v2 line", () => {
    const m = parseProcCgroup(HYBRID_SELF_CGROUP);
    expect(m.find((x) => x.controllers.includes("memory"))).toEqual({ hierarchyId: 4, controllers: ["memory"], path: "/process_api/e979f736", deleted: false });
    expect(m.find((x) => x.hierarchyId === 0)).toEqual({ hierarchyId: 0, controllers: [], path: "/", deleted: false });
    expect(m.find((x) => x.hierarchyId === 9)!.controllers).toEqual(["name=systemd"]);
  });

  it("keeps ':' inside paths and notices deleted cgroups", () => {
    const m = parseProcCgroup("2:cpu,cpuacct:/a:b/c\n0::/user.slice/x.scope (deleted)\n");
    expect(m[0]).toEqual({ hierarchyId: 2, controllers: ["cpu", "cpuacct"], path: "/a:b/c", deleted: false });
    expect(m[1]).toEqual({ hierarchyId: 0, controllers: [], path: "/user.slice/x.scope", deleted: true });
  });
});

describe("cgroupDirUnder", () => {
  it("joins the mount point and our path for a root mount", () => {
    expect(cgroupDirUnder("/sys/fs/cgroup/memory", "/", "/process_api/x")).toBe("/sys/fs/cgroup/memory/process_api/x");
    expect(cgroupDirUnder("/sys/fs/cgroup/pids", "/", "/")).toBe("/sys/fs/cgroup/pids");
  });

  it("strips the mount root of a container's bind mount", () => {
    expect(cgroupDirUnder("/sys/fs/cgroup/memory", "/docker/abc", "/docker/abc")).toBe("/sys/fs/cgroup/memory");
    expect(cgroupDirUnder("/sys/fs/cgroup/memory", "/docker/abc", "/docker/abc/sub")).toBe("/sys/fs/cgroup/memory/sub");
  });

  it("refuses paths outside the mount root", () => {
    expect(cgroupDirUnder("/sys/fs/cgroup", "/docker/abc", "/docker/abcd")).toBeUndefined();
    expect(cgroupDirUnder("/sys/fs/cgroup", "/docker/abc", "/")).toBeUndefined();
  });
});

describe("event and stat files", () => {
  it("reads v1 memory.oom_control", () => {
    expect(parseFlatKeyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n").get("oom_kill")).toBe(3);
  });

  it("reads v2 memory.events, pids.events and cpu.stat", () => {
    const mem = parseFlatKeyed("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n");
    expect(mem.get("oom_kill")).toBe(2);
    expect(parseFlatKeyed("max 5\n").get("max")).toBe(5);
    expect(parseFlatKeyed("usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\nnr_periods 10\n").get("usage_usec")).toBe(123456);
  });

  it("reads single values, 'max' and cgroup.procs", () => {
    expect(parseSingleValue("4096\n")).toBe(4096);
    expect(parseSingleValue("max\n")).toBe(Infinity);
    expect(parseSingleValue("")).toBeNaN();
    expect(parseProcs("12\n345\n\n")).toEqual([12, 345]);
    expect(parseProcs("")).toEqual([]);
  });
});

describe("owner folders", () => {
  it("round-trips pid and start time", () => {
    expect(ownerName(1234, 98765)).toBe("pid-1234-98765");
    expect(parseOwnerName("pid-1234-98765")).toEqual({ pid: 1234, startTime: 98765 });
    expect(parseOwnerName("sb-abc")).toBeUndefined();
    expect(parseOwnerName("pid-0-1")).toBeUndefined();
  });

  it("reads the start time from /proc/<pid>/stat even when comm has spaces and parentheses", () => {
    const fields = ["S", ...Array.from({ length: 18 }, (_, i) => String(i)), "424242", "999"];
    expect(parseProcStatStartTime(`77 (evil ) (name) ${fields.join(" ")}`)).toBe(424242);
    expect(parseProcStatStartTime("nonsense")).toBeUndefined();
  });
});
