/**
 * Escape attempts run inside a sandbox; every one must fail. Shared by all
 * backends, like the conformance suite: a backend ships only when all fail.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sandbox } from "../../src/sandbox/types.js";
import { collect } from "../../src/sandbox/collect.js";
import type { ConformanceTarget } from "../conformance/suite.js";

/** Run a shell snippet; returns exit code and output. */
async function sh(sb: Sandbox, script: string): Promise<{ code: number | null; out: string }> {
  const r = await collect(sb.exec(["sh", "-c", script], { timeoutMs: 20_000 }));
  return { code: r.result.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

/** Run python3 code that prints a result line; raw syscalls go through ctypes. */
async function py(sb: Sandbox, code: string): Promise<string> {
  const r = await collect(sb.exec(["python3", "-c", code], { timeoutMs: 20_000 }));
  return (r.stdout.toString() + r.stderr.toString()).trim();
}

const SYSCALL = "import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); libc.syscall.restype = ctypes.c_long";
/** x86_64 numbers; the suite checks errno != 0 and result -1. */
const NR = process.arch === "arm64"
  ? { ptrace: 117, mount: 40, unshare: 97, init_module: 105, finit_module: 273, bpf: 280, kexec_load: 104, setns: 268, perf_event_open: 241 }
  : { ptrace: 101, mount: 165, unshare: 272, init_module: 175, finit_module: 313, bpf: 321, kexec_load: 246, setns: 308, perf_event_open: 298 };

export function defineEscapeSuite(t: ConformanceTarget): void {
  describe.skipIf(t.skip !== undefined)(`escape attempts: ${t.name}`, () => {
    let sb: Sandbox;
    let server: Server;
    let port = 0;
    let hostSleeper: ChildProcess;

    beforeAll(async () => {
      sb = await t.backend().create(t.spec);
      server = createServer((c) => c.end("host-secret\n"));
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      port = (server.address() as { port: number }).port;
      hostSleeper = spawn("sleep", ["300"], { stdio: "ignore" });
    });
    afterAll(async () => {
      hostSleeper?.kill("SIGKILL");
      server?.close();
      await sb?.destroy();
    });

    it("cannot read host secrets", async () => {
      expect((await sh(sb, "cat /etc/shadow")).code).not.toBe(0);
      // find, not ls: some sandboxes (old gVisor) refuse the statx flags ls uses, and a
      // check that fails for that reason would pass without testing anything.
      expect((await sh(sb, "find / -maxdepth 0")).code).toBe(0);
      for (const dir of ["/root", "/home", "/run", "/var/run", process.cwd()]) {
        expect((await sh(sb, `find ${dir} -maxdepth 1`)).code, dir).not.toBe(0);
      }
    });

    it("cannot write outside its workspace and /tmp", async () => {
      for (const target of ["/usr/lg-escape", "/etc/lg-escape", "/lg-escape", "/bin/lg-escape", "/proc/sys/kernel/hostname"]) {
        const r = await sh(sb, `echo x > ${target}`);
        expect(r.code, target).not.toBe(0);
      }
    });

    it("cannot see or signal host processes", async () => {
      const procs = await sh(sb, "find /proc -maxdepth 1 -name '[0-9]*' | wc -l");
      expect(Number(procs.out.trim())).toBeLessThanOrEqual(5);
      await sh(sb, `kill -9 ${hostSleeper.pid}`);
      expect(hostSleeper.exitCode).toBeNull();
      expect(() => process.kill(hostSleeper.pid!, 0)).not.toThrow();
    });

    it("cannot ptrace, mount, load modules or use other kernel attack surface", async () => {
      const calls: [string, string][] = [
        ["ptrace", `${NR.ptrace}, 0, 0, 0, 0`],
        ["mount", `${NR.mount}, b"none", b"/tmp", b"tmpfs", 0, 0`],
        ["init_module", `${NR.init_module}, 0, 0, b""`],
        ["finit_module", `${NR.finit_module}, 0, b"", 0`],
        ["bpf", `${NR.bpf}, 0, 0, 0`],
        ["kexec_load", `${NR.kexec_load}, 0, 0, 0, 0`],
        ["setns", `${NR.setns}, 0, 0`],
        ["perf_event_open", `${NR.perf_event_open}, 0, 0, -1, -1, 0`],
        ["unshare(CLONE_NEWUSER)", `${NR.unshare}, 0x10000000`],
      ];
      for (const [name, args] of calls) {
        const out = await py(sb, `${SYSCALL}; r = libc.syscall(${args}); print(r, ctypes.get_errno())`);
        const [ret, errno] = out.split(" ").map(Number);
        expect(ret, `${name}: ${out}`).toBe(-1);
        expect(errno, `${name}: ${out}`).toBeGreaterThan(0);
      }
      expect((await sh(sb, "mount -t tmpfs none /tmp")).code).not.toBe(0);
    });

    it("cannot create raw or packet sockets", async () => {
      const out = await py(sb, "import socket\nfor fam, typ in [(socket.AF_INET, socket.SOCK_RAW), (socket.AF_PACKET, socket.SOCK_RAW)]:\n  try:\n    socket.socket(fam, typ, 1); print('opened')\n  except OSError as e: print('denied', e.errno)");
      expect(out).not.toContain("opened");
      expect(out.match(/denied/g)?.length).toBe(2);
    });

    it("cannot reach a server on the host's loopback", async () => {
      const out = await py(sb, `import socket\ntry:\n  s = socket.create_connection(("127.0.0.1", ${port}), 2); print("reached", s.recv(100))\nexcept OSError as e: print("blocked", e.errno)`);
      expect(out).toMatch(/^blocked/);
    });

    it("cannot create a user namespace inside", async () => {
      expect((await sh(sb, "unshare -U true")).code).not.toBe(0);
      expect((await sh(sb, "unshare -r -n true")).code).not.toBe(0);
    });

    it("runs without capabilities and with no_new_privs", async () => {
      const r = await sh(sb, "grep -E '^(CapEff|CapPrm|CapBnd|Seccomp):' /proc/self/status");
      expect(r.out).toMatch(/CapEff:\s+0000000000000000/);
      expect(r.out).toMatch(/CapPrm:\s+0000000000000000/);
      expect(r.out).toMatch(/Seccomp:\s+2/);
      // prctl rather than the NoNewPrivs status line, which gVisor does not print.
      expect(await py(sb, `${SYSCALL}; print(libc.prctl(39, 0, 0, 0, 0))`)).toBe("1");
    });
  });
}
