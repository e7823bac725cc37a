import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { enterCgroupArgv } from "../../src/policy/limits/index.js";

// Regular files stand in for cgroup.procs: the wrapper only writes its pid into them.
const dir = mkdtempSync(join(tmpdir(), "lg-enter-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const canary = join(dir, "pwned");
const nasty = [
  "with space",
  "it's \"quoted\"",
  `$(touch ${canary})`,
  `\`touch ${canary}\``,
  `; touch ${canary}; #`,
  "$HOME ${PATH} $1 $@ *",
  "line\nbreak",
  "--",
  "-n",
  "",
];

function run(procsFiles: string[], argv: string[]) {
  const [cmd, ...args] = enterCgroupArgv(procsFiles, argv);
  return spawnSync(cmd!, args, { encoding: "utf8" });
}

describe("enterCgroupArgv", () => {
  it("builds /bin/sh -c with a fixed script and everything else as positional parameters", () => {
    const argv = enterCgroupArgv(["/a/cgroup.procs", "/b b/cgroup.procs"], ["echo", "$(x)"]);
    expect(argv.slice(0, 2)).toEqual(["/bin/sh", "-c"]);
    expect(argv.slice(4)).toEqual(["2", "/a/cgroup.procs", "/b b/cgroup.procs", "echo", "$(x)"]);
    // The script text never contains caller data.
    expect(argv[2]).not.toContain("/a/cgroup.procs");
    expect(argv[2]).not.toContain("$(x)");
  });

  it("writes its own pid into every procs file, then execs argv verbatim (no injection)", () => {
    const files = [join(dir, "a b $(touch pwned)"), join(dir, `q'"\`x\``)];
    for (const f of files) writeFileSync(f, "");
    const res = run(files, ["/usr/bin/printf", "[%s]\n", ...nasty]);
    expect(res.status).toBe(0);
    expect(res.stdout).toBe(nasty.map((a) => `[${a}]\n`).join(""));
    expect(existsSync(canary)).toBe(false);
    // printf ran with the pid the shell wrote: exec keeps the pid.
    const pids = files.map((f) => readFileSync(f, "utf8").trim());
    expect(pids[0]).toMatch(/^[0-9]+$/);
    expect(pids[1]).toBe(pids[0]);
    expect(pids[0]).toBe(String(res.pid));
  });

  it("execs with the same pid (so the process that runs is the one in the cgroup)", () => {
    const f = join(dir, "procs-same-pid");
    writeFileSync(f, "");
    const out = run([f], ["/bin/sh", "-c", "echo $$"]);
    expect(out.stdout.trim()).toBe(readFileSync(f, "utf8").trim());
  });

  it("fails with exit 125 and runs nothing when a procs file cannot be written", () => {
    const res = run([join(dir, "missing-dir", "cgroup.procs")], ["/bin/sh", "-c", `touch ${canary}`]);
    expect(res.status).toBe(125);
    expect(res.stderr).toContain("luminaguard: cannot enter cgroup");
    expect(existsSync(canary)).toBe(false);
  });

  it("works with no procs files at all", () => {
    expect(execFileSync(...splitArgv(enterCgroupArgv([], ["echo", "hi"])), { encoding: "utf8" })).toBe("hi\n");
  });

  it("refuses relative procs paths, an empty argv, a leading '-' and NUL bytes", () => {
    expect(() => enterCgroupArgv(["cgroup.procs"], ["true"])).toThrow(/absolute/);
    expect(() => enterCgroupArgv([], [])).toThrow(/empty/);
    expect(() => enterCgroupArgv([], ["-a", "x"])).toThrow(/must not start with "-"/);
    expect(() => enterCgroupArgv([], ["echo", "a\0b"])).toThrow(/NUL/);
  });
});

function splitArgv(argv: string[]): [string, string[]] {
  return [argv[0]!, argv.slice(1)];
}
