import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ociSpec, rootfsSkeleton, type OciSpecInput } from "../../src/sandbox/gvisor/oci-spec.js";
import { CONTROL_DIR, LAUNCHER_PATH, initArgv, launchArgv, launcherScript } from "../../src/sandbox/gvisor/launcher.js";
import { hostLimits, RUNTIME_MEMORY_BYTES } from "../../src/sandbox/gvisor/backend.js";
import { globalArgs } from "../../src/sandbox/gvisor/runsc.js";

const input: OciSpecInput = {
  id: "sb-test",
  uid: 65534,
  gid: 65534,
  view: [
    { kind: "ro-bind", path: "/usr" },
    { kind: "symlink", path: "/bin", target: "usr/bin" },
    { kind: "ro-bind", path: "/etc/ld.so.cache" },
  ],
  passwdFile: "/run/lg/sb-test/etc/passwd",
  groupFile: "/run/lg/sb-test/etc/group",
  workspaceDir: "/run/lg/sb-test/workspace",
  tmpDir: "/run/lg/sb-test/tmp",
  controlDir: "/run/lg/sb-test/control",
  args: initArgv(),
};

describe("gVisor OCI spec", () => {
  const spec = ociSpec(input);
  const byDest = new Map(spec.mounts.map((m) => [m.destination, m]));

  it("runs an unprivileged first process with no capabilities and no_new_privs", () => {
    expect(spec.process.user).toEqual({ uid: 65534, gid: 65534, additionalGids: [] });
    for (const set of Object.values(spec.process.capabilities)) expect(set).toEqual([]);
    expect(spec.process.noNewPrivileges).toBe(true);
    expect(spec.process.terminal).toBe(false);
    expect(spec.process.args).toEqual(["/usr/bin/perl", LAUNCHER_PATH, "init"]);
    expect(spec.hostname).toBe("sb-test");
  });

  it("has a read-only root and binds only the view read-only", () => {
    expect(spec.root).toEqual({ path: "rootfs", readonly: true });
    expect(byDest.get("/usr")?.options).toEqual(expect.arrayContaining(["ro", "nosuid", "nodev"]));
    expect(byDest.get("/etc/ld.so.cache")?.options).toContain("ro");
    expect(byDest.get("/etc/passwd")).toMatchObject({ source: input.passwdFile, options: expect.arrayContaining(["ro"]) });
    expect(byDest.get(CONTROL_DIR)).toMatchObject({ source: input.controlDir, options: expect.arrayContaining(["ro"]) });
    // Symlinks of the view are not mounts; nothing of /home, /root, /run, /var or host /tmp is.
    expect(byDest.has("/bin")).toBe(false);
    for (const m of spec.mounts) {
      if (m.type === "bind") expect(m.source.startsWith("/home") || m.source.startsWith("/root") || m.source === "/tmp" || m.source.startsWith("/var")).toBe(false);
    }
  });

  it("makes only /workspace and /tmp writable", () => {
    const writable = spec.mounts.filter((m) => m.type === "bind" && m.options?.includes("rw")).map((m) => [m.destination, m.source]);
    expect(writable).toEqual([
      ["/workspace", input.workspaceDir],
      ["/tmp", input.tmpDir],
    ]);
    expect(byDest.get("/proc")?.type).toBe("proc");
    expect(byDest.get("/dev")?.type).toBe("tmpfs");
  });

  it("joins the firewall's network namespace only when given one", () => {
    expect(spec.linux.namespaces).toContainEqual({ type: "network" });
    const networked = ociSpec({ ...input, netnsPath: "/run/netns/lg-sb-test", extraRoFiles: [["/run/lg/sb-test/resolv.conf", "/etc/resolv.conf"]] });
    expect(networked.linux.namespaces).toContainEqual({ type: "network", path: "/run/netns/lg-sb-test" });
    expect(networked.mounts.find((m) => m.destination === "/etc/resolv.conf")?.options).toContain("ro");
    for (const type of ["pid", "ipc", "uts", "mount"]) expect(spec.linux.namespaces).toContainEqual({ type });
  });

  it("lists mount points as folders or files like their sources, and the view's symlinks", () => {
    const files = new Set(["/etc/ld.so.cache", input.passwdFile, input.groupFile]);
    const sk = rootfsSkeleton(spec, input.view, (p) => !files.has(p));
    expect(sk.files).toEqual(["/etc/group", "/etc/ld.so.cache", "/etc/passwd"]);
    expect(sk.dirs).toEqual(expect.arrayContaining(["/etc", "/usr", "/proc", "/dev", "/workspace", "/tmp", CONTROL_DIR]));
    expect(sk.dirs).not.toContain("/etc/passwd");
    expect(sk.symlinks).toEqual([["/bin", "usr/bin"]]);
  });
});

describe("gVisor launcher", () => {
  it("passes identity, limits, cwd, seccomp, env and argv in order", () => {
    const argv = launchArgv({ uid: 1000, gid: 100, nproc: 64, cwd: "/tmp", seccompPath: "/x.bpf", env: { A: "1", B: "x=y" }, argv: ["sh", "-c", "echo -- hi"] });
    expect(argv).toEqual(["/usr/bin/perl", LAUNCHER_PATH, "exec", "1000", "100", "64", "/tmp", "/x.bpf", "2", "A=1", "B=x=y", "--", "sh", "-c", "echo -- hi"]);
    expect(launchArgv({ uid: 1, gid: 1, nproc: 0, cwd: "/", seccompPath: undefined, env: {}, argv: ["true"] })).toContain("-");
  });

  it("uses each arch's own syscall numbers", () => {
    expect(launcherScript("x86_64")).toContain("unshare => 272");
    expect(launcherScript("x86_64")).toContain("seccomp => 317");
    expect(launcherScript("aarch64")).toContain("unshare => 97");
    expect(launcherScript("aarch64")).toContain("seccomp => 277");
  });

  it.skipIf(!existsSync("/usr/bin/perl"))("is valid Perl that refuses an unknown mode", () => {
    const dir = mkdtempSync(join(tmpdir(), "lg-launch-"));
    try {
      const file = join(dir, "launch.pl");
      writeFileSync(file, launcherScript(process.arch === "arm64" ? "aarch64" : "x86_64"));
      execFileSync("/usr/bin/perl", ["-c", file], { stdio: "pipe" });
      let err: { status?: number; stderr?: Buffer } = {};
      try {
        execFileSync("/usr/bin/perl", [file, "bogus"], { stdio: "pipe" });
      } catch (e) {
        err = e as typeof err;
      }
      expect(err.status).toBe(125);
      expect(String(err.stderr)).toContain("unknown launcher mode");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("gVisor host limits and flags", () => {
  it("gives the runtime its own memory and host threads on top of the sandbox's limits", () => {
    const host = hostLimits({ memoryBytes: 256 * 1024 * 1024, pids: 64, cpus: 0.5 });
    expect(host.memoryBytes).toBe(256 * 1024 * 1024 + RUNTIME_MEMORY_BYTES);
    expect(host.pids).toBeGreaterThan(64 * 8);
    expect(host.cpus).toBe(0.5);
  });

  it("always names our own state root and never lets runsc make cgroups", () => {
    const args = globalArgs({ path: "/usr/bin/runsc", root: "/run/lg/gvisor/pid-1-2/state", rootless: false }, "none");
    expect(args).toEqual(["--root", "/run/lg/gvisor/pid-1-2/state", "--network=none", "--ignore-cgroups"]);
    expect(globalArgs({ path: "runsc", root: "/r", rootless: true }, "host")).toContain("--rootless");
  });
});
