/**
 * The gVisor backend against the shared conformance and escape suites, plus
 * what only this backend has: limits enforced inside one gVisor kernel, a
 * sandbox whose sentry dies, and the sweep of a crashed owner's leftovers.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defineConformanceSuite, type ConformanceTarget } from "../conformance/suite.js";
import { defineEscapeSuite } from "../security/escape-suite.js";
import { GvisorBackend } from "../../src/sandbox/gvisor/backend.js";
import { sweepStaleGvisor, runscProcesses } from "../../src/sandbox/gvisor/sweep.js";
import { collect } from "../../src/sandbox/collect.js";
import type { Sandbox } from "../../src/sandbox/types.js";
import { parseConfig } from "../../src/config/load.js";
import { toSandboxSpec } from "../../src/config/schema.js";
import { runtimeDir } from "../../src/config/paths.js";
import { ownOwnerName } from "../../src/policy/limits/index.js";
import { announceSkip, gvisorSkipReason, RUNSC } from "../helpers/capabilities.js";
import { SandboxNetworking } from "../../src/sandbox/network.js";
import { EgressProxy } from "../../src/policy/firewall/proxy.js";
import { TestInternet } from "./firewall-harness.js";
import { eventually, pidsWithMarker } from "../helpers/procs.js";
import { mountsNamed } from "../helpers/leftovers.js";
import { mountScratchDisk } from "../../src/sandbox/scratch-disk.js";

const skip = gvisorSkipReason();
announceSkip("gvisor backend", skip);

const text = (b: Uint8Array): string => Buffer.from(b).toString("utf8");
const spec = toSandboxSpec(parseConfig({ sandbox: { backend: "gvisor", limits: { memory: "256M", pids: 64 } } }).sandbox);

/** Folders, runsc state, scratch-disk mounts, cgroups and host processes of these sandbox ids that still exist. */
async function gvisorLeftovers(ids: string[]): Promise<string[]> {
  const out: string[] = mountsNamed(new Set(ids));
  const base = join(runtimeDir(), "gvisor");
  for (const owner of existsSync(base) ? readdirSync(base) : []) {
    for (const name of readdirSync(join(base, owner)).concat(existsSync(join(base, owner, "state")) ? readdirSync(join(base, owner, "state")).map((n) => `state/${n}`) : [])) {
      if (ids.some((id) => name === id || name.startsWith(`state/${id}_`))) out.push(join(base, owner, name));
    }
  }
  const cgroups = (dir: string, depth: number): string[] => {
    let names: string[];
    try {
      names = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return [];
    }
    return names.flatMap((n) => (ids.includes(n) ? [join(dir, n)] : depth > 0 ? cgroups(join(dir, n), depth - 1) : []));
  };
  out.push(...cgroups("/sys/fs/cgroup", 7));
  for (const id of ids) out.push(...pidsWithMarker(id).map((pid) => `process ${pid} (${id})`));
  return out;
}

/**
 * Processes inside the sandbox whose argv holds `marker` (gVisor's are not host
 * processes). Asked with `runsc exec` straight into the container, not through
 * the launcher: each command's own /proc shows only its own tree.
 */
async function processesWithMarker(sb: Sandbox, marker: string): Promise<number> {
  if (sb.destroyed) return 0;
  const root = join(runtimeDir(), "gvisor", await ownOwnerName(), "state");
  // The counter gets the marker reversed, so its own argv does not match.
  const script = 'my $m = reverse shift; my $n = 0; opendir(my $d, "/proc") or die; for my $p (grep { /^\\d+$/ } readdir $d) { open(my $f, "<", "/proc/$p/cmdline") or next; local $/; my $c = <$f> // ""; $n++ if index($c, $m) >= 0 } print $n';
  const out = execFileSync(RUNSC!, ["--root", root, "--network=none", "--ignore-cgroups", "exec", sb.id, "/usr/bin/perl", "-e", script, [...marker].reverse().join("")], { timeout: 20_000 });
  return Number(out.toString().trim());
}

const target: ConformanceTarget = {
  name: "gvisor",
  skip,
  backend: () => new GvisorBackend(),
  spec,
  leftovers: gvisorLeftovers,
  processesWithMarker,
};

defineConformanceSuite(target);
defineEscapeSuite(target);

describe.skipIf(skip !== undefined)("gvisor backend specifics", () => {
  const backend = skip ? undefined : new GvisorBackend();
  const made: Sandbox[] = [];
  const fresh = async (over: Partial<typeof spec> = {}): Promise<Sandbox> => {
    const sb = await backend!.create({ ...spec, ...over });
    made.push(sb);
    return sb;
  };
  afterAll(async () => {
    await Promise.allSettled(made.map((s) => s.destroy()));
    expect(await gvisorLeftovers(made.map((s) => s.id))).toEqual([]);
  });

  it("keeps files between execs, and only /workspace and /tmp are writable", async () => {
    const sb = await fresh();
    await collect(sb.exec(["sh", "-c", "echo kept > /workspace/a; echo kept > /tmp/b"]));
    const r = await collect(sb.exec(["sh", "-c", "cat /workspace/a /tmp/b; for p in /etc/x /usr/x /x /dev/x /.luminaguard/x; do (echo x > $p) 2>/dev/null && echo WROTE $p; done; true"]));
    expect(text(r.stdout)).toBe("kept\nkept\n");
  });

  it("does not let one sandbox see another's files (checked with find, not ls)", async () => {
    const [a, b] = await Promise.all([fresh(), fresh()]);
    await collect(a.exec(["sh", "-c", "echo a > /workspace/only-a; echo a > /tmp/only-a"]));
    const r = await collect(b.exec(["find", "/workspace", "/tmp"]));
    expect(r.result.exitCode).toBe(0);
    expect(text(r.stdout).split("\n").sort().filter(Boolean)).toEqual(["/tmp", "/workspace"]);
  });

  it("bounds the sandbox's processes (RLIMIT_NPROC inside gVisor)", async () => {
    const sb = await fresh({ limits: { ...spec.limits, pids: 16 } });
    const forkLoop = 'my $n = 0; while ($n < 40) { my $p = fork; last unless defined $p; if (!$p) { sleep 30; exit } $n++ } print "$n $!\\n"; kill 9, -1';
    const r = await collect(sb.exec(["perl", "-e", forkLoop], { timeoutMs: 60_000 }));
    const [count, ...why] = text(r.stdout).trim().split(" ");
    expect(Number(count)).toBeLessThan(16);
    expect(why.join(" ")).toMatch(/Resource temporarily unavailable/);
  });

  it("ends a command that outgrows the memory limit with E_OOM, and the sandbox is lost", async () => {
    const sb = await fresh({ limits: { ...spec.limits, memoryBytes: 64 * 1024 * 1024 } });
    const h = sb.exec(["perl", "-e", "my $x = 'a' x (400 * 1024 * 1024); print length $x"], { timeoutMs: 60_000 });
    await expect(collect(h)).rejects.toMatchObject({ code: "E_OOM" });
    expect(() => sb.exec(["true"])).toThrow(expect.objectContaining({ code: "E_SANDBOX_CRASHED" }));
  });

  it("bounds /tmp and /workspace together by limits.disk: ENOSPC inside, diskFull on the result", async () => {
    const sb = await fresh({ limits: { ...spec.limits, diskBytes: 16 * 1024 * 1024 } });
    const r = await collect(sb.exec(["sh", "-c", "dd if=/dev/zero of=/tmp/fill bs=1M count=32 2>/dev/null; echo tmp=$?; dd if=/dev/zero of=/workspace/fill bs=1M count=1 2>/dev/null; echo workspace=$?"], { timeoutMs: 60_000 }));
    expect(text(r.stdout)).toBe("tmp=1\nworkspace=1\n");
    expect(r.result.diskFull).toBe(true);
    const freed = await collect(sb.exec(["sh", "-c", "rm /tmp/fill && echo freed"]));
    expect(text(freed.stdout)).toBe("freed\n");
    expect(freed.result.diskFull).toBeUndefined();
  });

  it("ends running execs with E_SANDBOX_CRASHED when the sentry is killed from outside", async () => {
    const sb = await fresh();
    const h = sb.exec(["sh", "-c", "echo up; sleep 60"]);
    const first = await h.stdout[Symbol.asyncIterator]().next();
    expect(text(first.value as Uint8Array)).toBe("up\n");
    const sentry = pidsWithMarker(sb.id).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, "latin1").startsWith("runsc-sandbox"));
    expect(sentry.length).toBe(1);
    process.kill(sentry[0]!, "SIGKILL");
    await expect(collect(h)).rejects.toMatchObject({ code: "E_SANDBOX_CRASHED" });
    expect(() => sb.exec(["true"])).toThrow(expect.objectContaining({ code: "E_SANDBOX_CRASHED" }));
    await sb.destroy();
    expect(await gvisorLeftovers([sb.id])).toEqual([]);
  });

  it("runs commands without privileges (no capabilities, no_new_privs, seccomp) and shows them only their own processes", async () => {
    const sb = await fresh();
    const hostSleeper = spawn("sleep", ["300"], { stdio: "ignore" });
    const r = await collect(sb.exec(["sh", "-c", `id -u; grep -E '^(CapEff|CapPrm|CapBnd|CapInh|Seccomp):' /proc/self/status; find /proc -maxdepth 1 -name '[0-9]*' | wc -l; kill -9 ${hostSleeper.pid}`]));
    // The host process is not reachable: the pid means nothing (or something else) in the sandbox.
    expect(hostSleeper.exitCode).toBeNull();
    expect(() => process.kill(hostSleeper.pid!, 0)).not.toThrow();
    hostSleeper.kill("SIGKILL");
    // gVisor's /proc/<pid>/status has no NoNewPrivs line; prctl tells.
    const nnp = await collect(sb.exec(["python3", "-c", "import ctypes; print(ctypes.CDLL(None).prctl(39, 0, 0, 0, 0))"]));
    expect(text(r.stdout)).toBe("65534\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nSeccomp:\t2\n4\n");
    expect(text(nnp.stdout)).toBe("1\n");
  });

  it("sweeps the runsc processes and folders of an owner that is gone, and nothing else", async () => {
    const base = join(runtimeDir(), "gvisor");
    // A folder named like an owner process that cannot exist (pid 1 with another start time).
    const ghost = join(base, "pid-1-1");
    mkdirSync(join(ghost, "state"), { recursive: true });
    writeFileSync(join(ghost, "state", "x_sandbox:x.state"), "{}");
    // Its sandbox's scratch disk is still mounted: the sweep must unmount it to remove the folder.
    const ghostDisk = join(ghost, "sb-ghost", "disk");
    mkdirSync(ghostDisk, { recursive: true });
    await mountScratchDisk(ghostDisk, "sb-ghost", 1024 * 1024);
    const live = await fresh();
    const removed = await sweepStaleGvisor(base);
    expect(removed).toContain(ghost);
    expect(existsSync(ghost)).toBe(false);
    expect(mountsNamed(new Set(["sb-ghost"]))).toEqual([]);
    expect(mountsNamed(new Set([live.id]))).toHaveLength(1);
    // Our own live sandbox is untouched.
    expect(text((await collect(live.exec(["echo", "alive"]))).stdout)).toBe("alive\n");
    expect(runscProcesses(join(ghost, "state"))).toEqual([]);
  });

  it("times out a command stuck before the launcher even started and leaves no process", async () => {
    const sb = await fresh();
    const marker = `lgmark-early-${process.pid}-${Date.now()}`;
    await expect(collect(sb.exec(["sh", "-c", `sleep 300 # ${marker}`], { timeoutMs: 1 }))).rejects.toMatchObject({ code: "E_EXEC_TIMEOUT" });
    expect(await eventually(async () => (await processesWithMarker(sb, marker)) === 0, 5000)).toBe(true);
  });
});

const netSkip = skip ?? (existsSync("/usr/sbin/nft") ? undefined : "nftables is not installed");
announceSkip("gvisor network", netSkip);

/** Connect, send a line, print the answer or the error's name (python3: node starts slowly under gVisor). */
const CLIENT = `
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)
    s.sendall(b"ping\\n"); print(s.recv(100).decode().strip())
except Exception as e:
    print("error:" + type(e).__name__)
`;

describe.skipIf(netSkip !== undefined)("gvisor sandboxes behind the egress firewall", () => {
  let internet: TestInternet;
  let networking: SandboxNetworking;
  let sb: Sandbox | undefined;

  beforeAll(async () => {
    internet = await TestInternet.create(`v${process.pid % 1000}`, [
      { name: "a", tcpPorts: [80, 8080], udpPorts: [] },
      { name: "b", tcpPorts: [80], udpPorts: [] },
    ]);
    networking = new SandboxNetworking({ proxy: new EgressProxy({ listen: [], resolve: async () => [] }) });
  }, 60_000);

  afterAll(async () => {
    const id = sb?.id;
    await sb?.destroy();
    await networking?.close();
    internet?.close();
    if (id) expect(await gvisorLeftovers([id])).toEqual([]);
  });

  it("reaches exactly what the policy allows, through the firewall's namespace", async () => {
    const a = internet.host("a");
    const b = internet.host("b");
    const backend = new GvisorBackend({ networking });
    sb = await backend.create(toSandboxSpec(parseConfig({ sandbox: { backend: "gvisor", network: { allow: [{ cidr: a.address, ports: [80] }] } } }).sandbox));
    const connect = async (host: string, port: number): Promise<string> => text((await collect(sb!.exec(["python3", "-c", CLIENT, host, String(port)], { timeoutMs: 20_000 }))).stdout).trim();
    expect(await connect(a.address, 80)).toBe("a:ping");
    expect(await connect(a.address, 8080)).toBe("error:TimeoutError");
    expect(await connect(b.address, 80)).toBe("error:TimeoutError");
    expect(text((await collect(sb.exec(["cat", "/etc/resolv.conf"]))).stdout)).toContain("no DNS");
    const stats = await sb.network!.stats();
    expect(stats.firewall.allowed.some((d) => d.dest === a.address && d.port === 80)).toBe(true);
  });
});
