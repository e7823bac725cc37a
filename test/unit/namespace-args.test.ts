import { describe, expect, it } from "vitest";
import { bwrapArgs, type BwrapInput } from "../../src/sandbox/namespace/bwrap-args.js";
import { resolveSandboxPath } from "../../src/sandbox/exec-files.js";
import { signalFromExitCode } from "../../src/sandbox/signals.js";
import { userNamespaceError } from "../../src/sandbox/namespace/host.js";

const input: BwrapInput = {
  id: "sb-test",
  uid: 65534,
  gid: 65534,
  view: [
    { kind: "ro-bind", path: "/usr" },
    { kind: "symlink", path: "/bin", target: "usr/bin" },
  ],
  passwdFile: "/run/lg/passwd",
  groupFile: "/run/lg/group",
  workspaceDir: "/run/lg/sb-test/workspace",
  tmpDir: "/run/lg/sb-test/tmp",
  unshareNet: true,
  seccompFd: 3,
  env: { FOO: "bar" },
  cwd: "/workspace",
  argv: ["sh", "-c", "echo --bind / /"],
};

/** The value following a flag (or the pair), for readable assertions. */
function after(args: string[], flag: string, n = 1): string[][] {
  const out: string[][] = [];
  args.forEach((a, i) => a === flag && out.push(args.slice(i + 1, i + 1 + n)));
  return out;
}

describe("bwrap command line", () => {
  const args = bwrapArgs(input);
  const sep = args.indexOf("--");
  const flags = args.slice(0, sep);

  it("unshares every namespace and blocks nested user namespaces", () => {
    for (const f of ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--unshare-net", "--disable-userns", "--die-with-parent", "--new-session", "--clearenv"]) {
      expect(flags, f).toContain(f);
    }
    expect(after(flags, "--uid")).toEqual([["65534"]]);
    expect(after(flags, "--seccomp")).toEqual([["3"]]);
  });

  it("binds only the host view read-only and the scratch folders read-write", () => {
    expect(after(flags, "--ro-bind", 2)).toEqual([
      ["/usr", "/usr"],
      ["/run/lg/passwd", "/etc/passwd"],
      ["/run/lg/group", "/etc/group"],
    ]);
    expect(after(flags, "--bind", 2)).toEqual([
      ["/run/lg/sb-test/tmp", "/tmp"],
      ["/run/lg/sb-test/workspace", "/workspace"],
    ]);
    expect(after(flags, "--symlink", 2)).toEqual([["usr/bin", "/bin"]]);
    expect(flags.join(" ")).not.toMatch(/\/root|\/home|\/var|\/run\/(?!lg)|\/sys/);
  });

  it("keeps the network when the firewall owns it", () => {
    expect(bwrapArgs({ ...input, unshareNet: false })).not.toContain("--unshare-net");
  });

  it("sets a clean environment and passes the command after --, untouched", () => {
    const env = after(flags, "--setenv", 2);
    expect(env).toContainEqual(["FOO", "bar"]);
    expect(env).toContainEqual(["PATH", "/usr/local/bin:/usr/bin:/bin"]);
    expect(args.slice(sep + 1)).toEqual(input.argv);
  });
});

describe("sandbox file paths", () => {
  it.each([
    ["a.txt", "/workspace/a.txt"],
    ["/workspace/x/../y", "/workspace/y"],
    ["/tmp/t", "/tmp/t"],
  ])("%s resolves to %s", (p, abs) => expect(resolveSandboxPath(p)).toBe(abs));

  it.each(["/etc/passwd", "../x", "/workspace/../../etc", "/tmpx/a", "/workspace", "", "a\0b"])("%j is refused", (p) => {
    expect(() => resolveSandboxPath(p)).toThrow(expect.objectContaining({ code: "E_FILE_PATH" }));
  });

  it("allows the roots themselves only for listing", () => {
    expect(resolveSandboxPath("/workspace", { allowRoot: true })).toBe("/workspace");
  });
});

describe("exit status decoding", () => {
  it("reads 128+N as signal N, the launcher convention", () => {
    expect(signalFromExitCode(137)).toBe("SIGKILL");
    expect(signalFromExitCode(143)).toBe("SIGTERM");
    expect(signalFromExitCode(1)).toBeNull();
    expect(signalFromExitCode(128)).toBeNull();
    expect(signalFromExitCode(255)).toBeNull();
  });
});

describe("user namespace errors", () => {
  it("explains a blocked user namespace and how to fix it, not bwrap's raw words", () => {
    const err = userNamespaceError("bwrap: setting up uid map: Permission denied");
    expect(err.code).toBe("E_USERNS_BLOCKED");
    expect(err.message).toMatch(/user namespaces/);
    expect(err.message).toMatch(/sysctl/);
  });
  it("keeps other failures distinct", () => {
    expect(userNamespaceError("bwrap: execvp true: No such file").code).toBe("E_BACKEND_UNAVAILABLE");
  });
});
