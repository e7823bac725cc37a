/** Seccomp profiles inside a real namespace sandbox: real workloads run, blocked calls fail. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NamespaceBackend } from "../../src/sandbox/namespace/backend.js";
import { collect } from "../../src/sandbox/collect.js";
import { parseConfig } from "../../src/config/load.js";
import { toSandboxSpec } from "../../src/config/schema.js";
import { ALWAYS_BLOCKED, syscallNumber } from "../../src/policy/seccomp/index.js";
import type { Sandbox } from "../../src/sandbox/types.js";
import { announceSkip, hasPython, namespaceSkipReason } from "../helpers/capabilities.js";

const skip = namespaceSkipReason() ?? (hasPython ? undefined : "python3 is not installed");
announceSkip("namespace seccomp", skip);

const arch = process.arch === "arm64" ? "aarch64" : "x86_64";

describe.skipIf(skip !== undefined)("seccomp in a namespace sandbox", () => {
  const backend = new NamespaceBackend();
  let strict: Sandbox;
  let logMode: Sandbox;
  beforeAll(async () => {
    [strict, logMode] = await Promise.all([
      backend.create(toSandboxSpec(parseConfig({ sandbox: { seccomp: { level: "strict" } } }).sandbox)),
      backend.create(toSandboxSpec(parseConfig({ sandbox: { seccomp: { level: "strict", mode: "log" } } }).sandbox)),
    ]);
  });
  afterAll(async () => {
    await Promise.all([strict?.destroy(), logMode?.destroy()]);
  });

  it.each([
    ["sh and coreutils", ["sh", "-c", "ls / >/dev/null && echo a | sort | wc -l && date +%Y >/dev/null && mkdir -p d/e && cp /etc/hosts d/e/ && rm -r d && echo done"], "1\ndone\n"],
    ["python3", ["python3", "-c", "import json, subprocess, hashlib, threading, tempfile\nt = threading.Thread(target=lambda: None); t.start(); t.join()\nwith tempfile.NamedTemporaryFile() as f: f.write(b'x')\nprint(json.dumps(subprocess.run(['echo','x'], capture_output=True).stdout.decode()))"], '"x\\n"\n'],
    ["node", ["node", "-e", "const fs = require('fs'); fs.writeFileSync('/tmp/n', 'ok'); require('child_process').execFileSync('true'); setTimeout(() => console.log(fs.readFileSync('/tmp/n', 'utf8')), 10)"], "ok\n"],
  ])("runs %s under strict", async (_name, argv, expected) => {
    const r = await collect(strict.exec(argv as string[], { timeoutMs: 30_000 }));
    expect(r.stderr.toString()).toBe("");
    expect(r.stdout.toString()).toBe(expected);
    expect(r.result.exitCode).toBe(0);
  });

  it("makes every always-blocked syscall fail, in enforce and in log mode", async () => {
    const numbers = Object.keys(ALWAYS_BLOCKED)
      .map((name) => [name, syscallNumber(arch, name)] as const)
      .filter((e): e is readonly [string, number] => e[1] !== undefined);
    expect(numbers.length).toBeGreaterThan(25);
    // Arguments are zero/invalid: a call that got past the filter would fail with EFAULT/EINVAL/EBADF, not EPERM.
    const script = `import ctypes, json, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
out = {}
for name, nr in json.loads(sys.argv[1]):
    ctypes.set_errno(0)
    r = libc.syscall(nr, 0, 0, 0, 0, 0, 0)
    out[name] = [r, ctypes.get_errno()]
print(json.dumps(out))`;
    for (const sb of [strict, logMode]) {
      const r = await collect(sb.exec(["python3", "-c", script, JSON.stringify(numbers)], { timeoutMs: 30_000 }));
      const results = JSON.parse(r.stdout.toString()) as Record<string, [number, number]>;
      for (const [name] of numbers) {
        expect(results[name], `${sb.spec.seccomp.mode}: ${name}`).toEqual([-1, 1]);
      }
    }
  });
});
