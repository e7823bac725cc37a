import { describe, expect, it, vi } from "vitest";
import { isFull, mountScratchDisk, mountArgs, mountPointsUnder, tmpfsData, tmpfsOptions, withDiskState, type ScratchDisk } from "../../src/sandbox/scratch-disk.js";
import { diskFullError } from "../../src/sandbox/errors.js";
import { encodeRequest, parseReply } from "../../src/sandbox/mount-helper/client.js";

const MiB = 1024 * 1024;

describe("scratch disk: the tmpfs mount", () => {
  it("is sized to the limit, root-owned 0711, without setuid or devices", () => {
    const opts = tmpfsOptions(32 * MiB).split(",");
    expect(opts).toEqual(expect.arrayContaining([`size=${32 * MiB}`, "mode=0711", "uid=0", "gid=0", "nosuid", "nodev"]));
    // Executables in /tmp and /workspace keep working, as on the folders they replace.
    expect(opts).not.toContain("noexec");
  });

  it("gives mount(2) only tmpfs's own options (lg-mount sets nosuid and nodev as flags)", () => {
    expect(tmpfsData(32 * MiB)).toBe(`size=${32 * MiB},nr_inodes=2048,mode=0711,uid=0,gid=0`);
    expect(tmpfsOptions(32 * MiB)).toBe(`${tmpfsData(32 * MiB)},nosuid,nodev`);
  });

  it("bounds inodes to one per 16 KiB, at least 1024", () => {
    expect(tmpfsOptions(1024 * MiB)).toContain("nr_inodes=65536");
    expect(tmpfsOptions(32 * MiB)).toContain("nr_inodes=2048");
    expect(tmpfsOptions(1 * MiB)).toContain("nr_inodes=1024");
  });

  it("names the sandbox as the mount's source, so /proc/mounts says whose it is", () => {
    expect(mountArgs("/run/lg/sandboxes/pid-1-2/sb-x", "sb-x", 16 * MiB)).toEqual(["-t", "tmpfs", "-o", tmpfsOptions(16 * MiB), "luminaguard-sb-x", "/run/lg/sandboxes/pid-1-2/sb-x"]);
  });
});

describe("scratch disk: full or not", () => {
  const total = 32 * MiB;
  it.each([
    [{ totalBytes: total, freeBytes: 0, freeInodes: 100 }, true],
    [{ totalBytes: total, freeBytes: 4096, freeInodes: 100 }, true],
    [{ totalBytes: total, freeBytes: 8 * MiB, freeInodes: 0 }, true],
    [{ totalBytes: total, freeBytes: 1 * MiB, freeInodes: 100 }, false],
    [{ totalBytes: 1024 * MiB, freeBytes: 2 * MiB, freeInodes: 100 }, true],
    [{ totalBytes: 1024 * MiB, freeBytes: 8 * MiB, freeInodes: 100 }, false],
  ])("%j → %s", (usage, full) => expect(isFull(usage)).toBe(full));

  it("marks an exec result diskFull only when the disk is full", async () => {
    const disk = (full: boolean | Error): ScratchDisk => ({ dir: "/x", limitBytes: MiB, full: async () => (full instanceof Error ? Promise.reject(full) : full), usedBytes: async () => 0, release: async () => {} });
    const res = { exitCode: 1, signal: null, durationMs: 3 };
    expect(await withDiskState(res, disk(true))).toEqual({ ...res, diskFull: true });
    expect(await withDiskState(res, disk(false))).toEqual(res);
    // statfs failing (the sandbox destroyed meanwhile) says nothing rather than failing the exec.
    expect(await withDiskState(res, disk(new Error("ENOENT")))).toEqual(res);
  });

  it("E_DISK_FULL tells the user which setting to raise", () => {
    const err = diskFullError(32 * MiB);
    expect(err.code).toBe("E_DISK_FULL");
    expect(err.message).toMatch(/\/tmp and \/workspace together, 32 MiB\).*No space left on device.*--disk.*sandbox\.limits\.disk/);
    expect(err.details).toEqual({ limitBytes: 32 * MiB });
  });
});

describe("scratch disk: finding mounts to sweep", () => {
  const info = [
    "22 1 0:21 / / rw - ext4 /dev/vda rw",
    "46 22 0:40 / /tmp/lg/sandboxes/pid-9-9/sb-a rw,nosuid - tmpfs luminaguard-sb-a rw,size=32768k",
    "47 22 0:41 / /tmp/lg/sandboxes/pid-9-9/sb\\040b rw,nosuid - tmpfs luminaguard-sb-b rw",
    "48 46 0:42 / /tmp/lg/sandboxes/pid-9-9/sb-a/tmp/inner rw - tmpfs x rw",
    "49 22 0:43 / /tmp/lg/sandboxes/pid-9-99/sb-c rw - tmpfs luminaguard-sb-c rw",
    "50 22 0:44 / /tmp/lg/sandboxes/pid-9-9x rw - tmpfs y rw",
    "",
  ].join("\n");

  it("lists mounts at or under the folder only, decoded, deepest first", () => {
    expect(mountPointsUnder(info, "/tmp/lg/sandboxes/pid-9-9")).toEqual(["/tmp/lg/sandboxes/pid-9-9/sb-a/tmp/inner", "/tmp/lg/sandboxes/pid-9-9/sb-a", "/tmp/lg/sandboxes/pid-9-9/sb b"]);
    expect(mountPointsUnder(info, "/tmp/lg/sandboxes/pid-9-99")).toEqual(["/tmp/lg/sandboxes/pid-9-99/sb-c"]);
    expect(mountPointsUnder(info, "/elsewhere")).toEqual([]);
  });
});

describe("scratch disk without root", () => {
  it("keeps the plain folder and warns once that the limit is not enforced", async () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    try {
      const [a, b] = [await mountScratchDisk("/nonexistent/a", "sb-a", 32 * MiB, false), await mountScratchDisk("/nonexistent/b", "sb-b", 32 * MiB, false)];
      expect(a.limitBytes).toBeUndefined();
      expect([await a.full(), await a.usedBytes(), await b.full()]).toEqual([false, 0, false]);
      await a.release();
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]![0]).toMatch(/limits\.disk \(32 MiB\) is not enforced.*needs root/);
      expect(warn.mock.calls[0]![1]).toEqual({ code: "LUMINAGUARD_DISK_UNBOUNDED" });
    } finally {
      warn.mockRestore();
    }
  });
});

describe("lg-mount's wire format", () => {
  it("sends NUL-terminated fields, so any path is one field", () => {
    expect(encodeRequest(["mount", "/run/a b\nc", "luminaguard-sb-x", "size=1"]).toString()).toBe("mount\0/run/a b\nc\0luminaguard-sb-x\0size=1\0");
    expect(() => encodeRequest(["umount", "/a\0b"])).toThrow(TypeError);
  });

  it("reads a reply line as errno and message", () => {
    expect(parseReply("0")).toEqual({ errno: 0, message: "" });
    expect(parseReply("16 Device or resource busy")).toEqual({ errno: 16, message: "Device or resource busy" });
    expect(parseReply("garbage")).toMatchObject({ errno: -1, message: expect.stringMatching(/unreadable reply/) });
  });
});
