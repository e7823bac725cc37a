/** The `luminaguard` command as a user runs it: output, exit codes, one-line errors. */
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, readdirSync, mkdtempSync, rmSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { announceSkip, hasPython, microvmSkipReason, namespaceSkipReason } from "../helpers/capabilities.js";

const bin = resolve(import.meta.dirname, "../../bin/luminaguard");
const bundle = resolve(import.meta.dirname, "../../dist/cli-bundle/luminaguard.mjs");

function lg(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(bin, args, { input: input ?? "", encoding: "utf8", timeout: 60_000, env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user-facing error: one line (plus an optional "see --help" hint), no stack trace. */
function expectCleanError(stderr: string, pattern: RegExp): void {
  expect(stderr).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
  expect(stderr.trim().split("\n").length).toBeLessThanOrEqual(2);
}

beforeAll(() => {
  if (!existsSync(bundle)) throw new Error("dist/cli-bundle/luminaguard.mjs is missing: run `make build` (make test does it) before the CLI tests.");
});

describe("luminaguard CLI: usage", () => {
  it("explains itself with --help", () => {
    const top = lg(["--help"]);
    expect(top.code).toBe(0);
    for (const cmd of ["exec", "doctor", "demo"]) expect(top.stdout).toContain(cmd);
    const exec = lg(["exec", "--help"]);
    expect(exec.code).toBe(0);
    expect(exec.stdout).toMatch(/--memory <size>/);
    expect(exec.stdout).toMatch(/--disk <size>/);
    expect(exec.stdout).toMatch(/124\s+the command exceeded --timeout/);
  });

  it.each([
    [["exec", "--memory", "12XB", "--", "true"], /Invalid memory limit "12XB".*512M/],
    [["exec", "--disk", "lots", "--", "true"], /Invalid disk limit "lots"/],
    [["exec", "--bogus", "--", "true"], /unknown option '--bogus'/],
    [["exec"], /missing required argument 'command'/],
    [["exec", "--cpus", "many", "--", "true"], /--cpus needs a number/],
    [["exec", "--timeout", "soon", "--", "true"], /Invalid --timeout "soon"/],
    [["exec", "--env", "NOEQUALS", "--", "true"], /--env needs KEY=VALUE/],
    [["exec", "--seccomp", "loose", "--", "true"], /Allowed choices are strict, default, permissive/],
    [["frobnicate"], /unknown command 'frobnicate'/],
  ])("%j fails with exit 2 and one clear line", (args, pattern) => {
    const r = lg(args);
    expect(r.code).toBe(2);
    expectCleanError(r.stderr, pattern);
  });
});

const skip = namespaceSkipReason();
announceSkip("CLI exec", skip);

describe.skipIf(skip !== undefined)("luminaguard exec", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "lg-cli-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("streams the command's output and passes its exit code through", () => {
    const r = lg(["exec", "--", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    expect(r).toMatchObject({ code: 7, stdout: "out\n", stderr: "err\n" });
  });

  it("forwards piped stdin, env and cwd", () => {
    const r = lg(["exec", "-e", "WHO=you", "--cwd", "/tmp", "--", "sh", "-c", 'cat; echo "$WHO $(pwd)"'], "piped\n");
    expect(r).toMatchObject({ code: 0, stdout: "piped\nyou /tmp\n" });
  });

  it("exits 124 on timeout, with the reason", () => {
    const r = lg(["exec", "--timeout", "300ms", "--", "sleep", "30"]);
    expect(r.code).toBe(124);
    expectCleanError(r.stderr, /E_EXEC_TIMEOUT/);
  });

  it("exits 128+N when the command is killed by signal N", () => {
    expect(lg(["exec", "--", "sh", "-c", "kill -TERM $$"]).code).toBe(143);
  });

  it.skipIf(!hasPython)("exits 137 with E_OOM when the memory limit is hit", () => {
    const r = lg(["exec", "--memory", "48M", "--", "python3", "-c", "b = bytearray(200 * 1024 * 1024)"]);
    expect(r.code).toBe(137);
    expectCleanError(r.stderr, /out of memory.*\[E_OOM\]/);
  });

  it("says the disk is full and which flag to raise, keeping the command's own exit code", () => {
    const r = lg(["exec", "--disk", "8M", "--", "sh", "-c", "dd if=/dev/zero of=/tmp/fill bs=1M count=16 2>/dev/null; echo dd=$?; exit 3"]);
    expect(r).toMatchObject({ code: 3, stdout: "dd=1\n" });
    expectCleanError(r.stderr, /disk \(\/tmp and \/workspace together, 8 MiB\) is full.*Raise --disk.*\[E_DISK_FULL\]/);
    // Room left: not a word.
    expect(lg(["exec", "--disk", "8M", "--", "sh", "-c", "head -c 4000000 /dev/zero > /workspace/f"])).toMatchObject({ code: 0, stderr: "" });
  });

  it("mounts a given workspace read-write and keeps it afterwards", () => {
    const ws = mkdtempSync(join(dir, "ws-"));
    rmSync(ws, { recursive: true });
    const missing = lg(["exec", "--workspace", ws, "--", "true"]);
    expect(missing.code).toBe(125);
    expectCleanError(missing.stderr, /is not an existing folder.*\[E_WORKSPACE\]/);
    // An ordinary user's private folder: the sandbox runs as its owner, so it can write there.
    chmodSync(dir, 0o711);
    const own = mkdtempSync(join(dir, "ws-"));
    chownSync(own, 4242, 4242);
    const r = lg(["exec", "--workspace", own, "--", "sh", "-c", "echo kept > /workspace/result.txt; id -u"]);
    expect(r).toMatchObject({ code: 0, stdout: "4242\n" });
    expect(readFileSync(join(own, "result.txt"), "utf8")).toBe("kept\n");
    expect(statSync(join(own, "result.txt")).uid).toBe(4242);
    // Behind a folder the sandbox user cannot search: a clear error, not bwrap's.
    chmodSync(dir, 0o700);
    const hidden = lg(["exec", "--workspace", own, "--", "true"]);
    expect(hidden.code).toBe(125);
    expectCleanError(hidden.stderr, /cannot reach the workspace.*not searchable.*\[E_WORKSPACE\]/);
  });

  it("gives a networked sandbox its own namespace, and removes it afterwards", () => {
    const r = lg(["exec", "--allow", "10.203.255.254:9", "--dns", "10.203.255.253", "--", "sh", "-c", "cat /etc/resolv.conf; grep -c . /proc/net/route"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    // The sandbox has a route out (veth + default route) and only the allowed resolver.
    expect(r.stdout).toBe("nameserver 10.203.255.253\n3\n");
    const after = lg(["firewall", "show", "--json"]);
    expect(after.code).toBe(0);
    // The CLI process has exited: a lease of its would show a dead owner (other test files may hold live ones).
    expect((JSON.parse(after.stdout) as { ownerAlive: boolean }[]).filter((n) => !n.ownerAlive)).toEqual([]);
    expect(lg(["exec", "--allow", "not a destination", "--", "true"]).code).toBe(2);
  });

  it("runs the scripted demo: every escape blocked, the firewall exact, nothing left behind", () => {
    const r = lg(["demo"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const vm = microvmSkipReason() === undefined;
    if (!vm) announceSkip("demo's micro-VM part", microvmSkipReason());
    // 7 in namespace sandboxes, 1 inside a micro-VM.
    expect(r.stdout.match(/^ {2}blocked /gm)?.length).toBe(vm ? 8 : 7);
    expect(r.stdout.match(/^ {2}as expected /gm)?.length).toBe(4);
    expect(r.stdout).toMatch(/E_OOM.*\n.*E_PIDS_LIMIT.*\n.*E_EXEC_TIMEOUT/);
    if (vm) {
      // Three micro-VM clones, each with its own hostname and random bytes.
      const clones = [...r.stdout.matchAll(/^ {2}(sb-[0-9a-f]+): kernel \S+, random ([0-9a-f]+)$/gm)];
      expect(clones).toHaveLength(3);
      expect(new Set(clones.map((m) => m[1])).size).toBe(3);
      expect(new Set(clones.map((m) => m[2])).size).toBe(3);
      expect(r.stdout).toMatch(/clones served 3, cold boots 0/);
    }
    // The agent part: green reads ran at once, the red edit showed its diff, was decided (no TTY: by the demo), and the chain verifies.
    expect(r.stdout).toMatch(/→ fs__list_directory .*\[green\]/);
    expect(r.stdout).toMatch(/→ fs__edit_file .*\[RED/);
    expect(r.stdout).toMatch(/-Read teh docs before you change anything\.\n\s+\+Read the docs before you change anything\./);
    expect(r.stdout).toMatch(/no terminal to ask: the demo approves this edit itself/);
    expect(r.stdout).toMatch(/README\.md now says: .*Read the docs/);
    expect(r.stdout).toMatch(/RED\s+fs__edit_file\s+approved/);
    expect(r.stdout).toMatch(/audit chain: verified, 3 rows hash-chained/);
    expect(r.stdout.split("\n").filter((l) => l.includes("→ fs__")).every((l) => l.startsWith("replay: "))).toBe(true);
    expect(readdirSync("/run/netns").filter((n) => n.startsWith("lgdemo"))).toEqual([]);
  }, 240_000); // the micro-VM part boots a template under TCG

  it("reports the host with doctor --json", () => {
    const r = lg(["doctor", "--json"]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { ready: { namespace: boolean } };
    expect(report.ready.namespace).toBe(true);
  });
});
