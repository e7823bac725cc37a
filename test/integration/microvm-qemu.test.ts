/**
 * The QEMU layer of the micro-VM backend against real QEMU, without a guest
 * kernel: microvm's firmware finds nothing to boot and idles, which is enough to
 * prove the jail, QMP, the cgroup, template save and clone restore. Guest
 * memory is written through QEMU's gdb stub, so copy-on-write is checked with
 * real writes. Needs root (cgroups, uid drop), qemu-system-x86_64 and bwrap.
 */
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startVm, sweepStaleVms, VM_UID, type VmProcess } from "../../src/sandbox/microvm/vm-process.js";
import { createTemplateFiles, restore, saveTemplate, startIncoming, type TemplateFiles } from "../../src/sandbox/microvm/snapshot.js";
import { announceSkip } from "../helpers/capabilities.js";
import { eventually, pidsWithMarker } from "../helpers/procs.js";

function skipReason(): string | undefined {
  if (!["/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64"].some((p) => existsSync(p))) return "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)";
  if (!existsSync("/usr/bin/bwrap")) return "bubblewrap is not installed (apt-get install bubblewrap)";
  if (process.getuid?.() !== 0) return "the VM jail's cgroup and uid drop need root";
  if (!existsSync("/usr/sbin/ip") && !existsSync("/usr/bin/ip") && !existsSync("/sbin/ip")) return "iproute2 is not installed (apt-get install iproute2)";
  return undefined;
}
const skip = skipReason();
announceSkip("micro-VM QEMU layer", skip);

const MEMORY_MIB = 64;

/** Every fd of `pid` as "n -> target". */
function fdsOf(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).map((n) => {
    try {
      return `${n} -> ${readlinkSync(`/proc/${pid}/fd/${n}`)}`;
    } catch {
      return `${n} -> ?`;
    }
  });
}

/** The process has exited (reaped, or a zombie). It may go between any two reads of /proc: that counts as gone. */
function goneOrZombie(pid: number): boolean {
  try {
    return statusField(pid, "State").startsWith("Z");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ESRCH") return true;
    throw err;
  }
}

function statusField(pid: number, field: string): string {
  return new RegExp(`^${field}:[ \\t]*(.*)$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]?.trim() ?? "";
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** A minimal gdb remote-protocol client: enough to read and write guest memory through QEMU's stub. */
class GdbStub {
  private buf = "";
  private waiters: (() => void)[] = [];

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      this.buf += d;
      this.waiters.splice(0).forEach((w) => w());
    });
  }

  /** Start QEMU's gdb stub on a socket in the VM folder and connect (the stub stops the vCPUs). */
  static async attach(vm: VmProcess): Promise<GdbStub> {
    const path = join(vm.dir, "gdb.sock");
    await vm.qmp.execute("human-monitor-command", { "command-line": `gdbserver unix:${path},server=on,wait=off` });
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ path });
      s.once("connect", () => resolve(s));
      s.once("error", reject);
    });
    return new GdbStub(socket);
  }

  /** Send one packet and return the first reply packet that is not a stop notification. */
  async request(data: string): Promise<string> {
    const sum = [...data].reduce((s, c) => s + c.charCodeAt(0), 0) % 256;
    this.socket.write(`$${data}#${sum.toString(16).padStart(2, "0")}`);
    for (;;) {
      const m = /\$([^#]*)#[0-9a-f]{2}/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m.index + m[0].length);
        this.socket.write("+");
        if (/^[TS][0-9a-f]{2}/.test(m[1]!)) continue;
        return m[1]!;
      }
      await new Promise<void>((r, reject) => {
        const t = setTimeout(() => reject(new Error(`gdb stub did not answer ${data}`)), 5000);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async read(addr: number, len: number): Promise<string> {
    return this.request(`m${addr.toString(16)},${len}`);
  }

  async write(addr: number, hex: string): Promise<void> {
    expect(await this.request(`M${addr.toString(16)},${hex.length / 2}:${hex}`)).toBe("OK");
  }

  close(): void {
    this.socket.destroy();
  }
}

describe.skipIf(skip !== undefined)("micro-VM QEMU layer (real QEMU, no guest kernel)", () => {
  let runtime: string;
  const saved = process.env.LUMINAGUARD_RUNTIME_DIR;
  const vms: VmProcess[] = [];
  const templates: TemplateFiles[] = [];

  beforeAll(() => {
    // Short, and this file's own: socket paths must stay under 108 bytes.
    runtime = mkdtempSync("/tmp/lg-mvm-");
    process.env.LUMINAGUARD_RUNTIME_DIR = runtime;
  });
  afterEach(async () => {
    await Promise.all(vms.splice(0).map((vm) => vm.kill()));
    await Promise.all(templates.splice(0).map((t) => t.remove()));
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.LUMINAGUARD_RUNTIME_DIR;
    else process.env.LUMINAGUARD_RUNTIME_DIR = saved;
    rmSync(runtime, { recursive: true, force: true });
  });

  async function start(opts: Parameters<typeof startVm>[0]): Promise<VmProcess> {
    const vm = await startVm(opts);
    vms.push(vm);
    return vm;
  }

  it("starts jailed: unprivileged, own namespaces, in its cgroup, nothing inherited; kill leaves nothing", async () => {
    const vm = await start({ memoryMiB: MEMORY_MIB });
    console.log(`[microvm] jailed start: QMP ready ${vm.timings.qmpReadyMs.toFixed(1)} ms after spawn, ${vm.timings.totalMs.toFixed(1)} ms in all`);
    expect(await vm.qmp.execute("query-status")).toMatchObject({ status: "running" });
    expect(vm.qmp.greeting.version.qemu.major).toBeGreaterThanOrEqual(7);

    // uid 65534 in every slot, no capabilities, no_new_privs, our filter under QEMU's own.
    expect(statusField(vm.pid, "Uid").split(/\s+/)).toEqual(Array(4).fill(String(VM_UID)));
    expect(statusField(vm.pid, "Gid").split(/\s+/)).toEqual(Array(4).fill(String(VM_UID)));
    expect(statusField(vm.pid, "Groups")).toBe("");
    expect(statusField(vm.pid, "CapEff")).toBe("0000000000000000");
    expect(statusField(vm.pid, "CapBnd")).toBe("0000000000000000");
    expect(statusField(vm.pid, "NoNewPrivs")).toBe("1");
    expect(Number(statusField(vm.pid, "Seccomp_filters"))).toBeGreaterThanOrEqual(2);

    // Its own pid, mount, ipc, uts and network namespaces; still the host's user namespace (no userns surface).
    for (const ns of ["pid", "mnt", "ipc", "uts", "net"]) {
      expect(readlinkSync(`/proc/${vm.pid}/ns/${ns}`), ns).not.toBe(readlinkSync(`/proc/self/ns/${ns}`));
    }
    expect(readlinkSync(`/proc/${vm.pid}/ns/user`)).toBe(readlinkSync("/proc/self/ns/user"));
    expect(statusField(vm.pid, "NSpid").split(/\s+/)).toEqual([String(vm.pid), "2"]);

    // In its cgroup, which holds only its jail.
    expect(readFileSync(`/proc/${vm.pid}/cgroup`, "utf8")).toContain(`/${vm.id}\n`);
    expect(await vm.cgroup!.pids()).toContain(vm.pid);

    // fds: /dev/null for stdin/stdout, our stderr pipe, and QEMU's own sockets and event fds: no file of ours.
    const fds = fdsOf(vm.pid);
    expect(fds).toContain("0 -> /dev/null");
    expect(fds).toContain("1 -> /dev/null");
    expect(fds.find((f) => f.startsWith("2 -> "))).toMatch(/^2 -> (socket|pipe):/);
    const unexpected = fds.filter((f) => !/ -> (\/dev\/null|socket:\[\d+\]|pipe:\[\d+\]|anon_inode:\[(eventfd|eventpoll|signalfd)\])$/.test(f));
    expect(unexpected).toEqual([]);
    expect(fds.filter((f) => / -> pipe:/.test(f))).toEqual([]); // a leaked pipe would be someone else's
    expect(readFileSync(`/proc/${vm.pid}/environ`, "utf8")).toBe("PWD=/\0");

    // The jail's view: the VM folder and /usr, not the host's /root or /etc.
    const root = `/proc/${vm.pid}/root`;
    expect(existsSync(`${root}/usr/bin/qemu-system-x86_64`)).toBe(true);
    expect(existsSync(`${root}${vm.dir}/qmp.sock`)).toBe(true);
    expect(existsSync(`${root}/etc/passwd`)).toBe(false);
    expect(existsSync(`${root}/root`)).toBe(false);

    const cgroupPaths = vm.cgroup!.paths;
    await vm.kill();
    await vm.kill(); // idempotent
    expect(await vm.exited).toEqual({ code: null, signal: "SIGKILL" });
    expect(existsSync(`/proc/${vm.pid}`)).toBe(false);
    expect(existsSync(vm.dir)).toBe(false);
    expect(cgroupPaths.filter((p) => existsSync(p))).toEqual([]);
    expect(pidsWithMarker(vm.id)).toEqual([]);
    await expect(vm.qmp.execute("query-status")).rejects.toMatchObject({ code: "E_QMP" });
  });

  it("saves a template and restores two clones that share its RAM copy-on-write", async () => {
    const files = await createTemplateFiles(`t-${process.pid}`, MEMORY_MIB);
    templates.push(files);
    const template = await start({ memoryMiB: MEMORY_MIB, ram: { kind: "shared-file", path: files.ramPath } });
    // Mark the template's memory, through the guest's own view of it.
    const addr = 0x200000;
    const gdb = await GdbStub.attach(template);
    await gdb.write(addr, "0badc0de");
    gdb.close();
    const saved = await saveTemplate(template, files.statePath);
    console.log(`[microvm] template save: ${saved.totalMs.toFixed(1)} ms, ${saved.stateBytes} bytes of device state`);
    expect(saved.stateBytes).toBeGreaterThan(1000);
    expect(saved.stateBytes).toBeLessThan(1024 * 1024); // device state only: RAM stayed in the file
    expect(await template.qmp.execute("query-status")).toMatchObject({ status: "postmigrate" });
    await template.kill();
    const before = sha256(files.ramPath);
    expect(readFileSync(files.ramPath).subarray(addr, addr + 4).toString("hex")).toBe("0badc0de");

    const clones = [await startIncoming(files, {}), await startIncoming(files, {})];
    vms.push(...clones);
    for (const c of clones) {
      expect(await c.qmp.execute("query-status")).toMatchObject({ status: "inmigrate" });
      const r = await restore(c, files.statePath);
      console.log(`[microvm] clone: QMP ready ${c.timings.qmpReadyMs.toFixed(1)} ms after spawn; restore ${r.migrateMs.toFixed(1)} ms + cont ${r.contMs.toFixed(1)} ms`);
      expect(await c.qmp.execute("query-status")).toMatchObject({ status: "running" });
    }

    // Clone 0 sees the template's mark and overwrites it; clone 1 still sees the template's value.
    const g0 = await GdbStub.attach(clones[0]!);
    expect(await g0.read(addr, 4)).toBe("0badc0de");
    await g0.write(addr, "feedface");
    expect(await g0.read(addr, 4)).toBe("feedface");
    g0.close();
    const g1 = await GdbStub.attach(clones[1]!);
    expect(await g1.read(addr, 4)).toBe("0badc0de");
    g1.close();
    for (const c of clones) await c.qmp.execute("cont");
    for (const c of clones) expect(await c.qmp.execute("query-status")).toMatchObject({ status: "running" });

    // The template's file never changed.
    expect(sha256(files.ramPath)).toBe(before);
    for (const c of clones) await c.kill();
    expect(sha256(files.ramPath)).toBe(before);
    await files.remove();
    expect(existsSync(files.ramPath) || existsSync(files.statePath)).toBe(false);
  });

  it("restore refuses a VM that is not waiting for one, and a template needs file-backed RAM", async () => {
    const vm = await start({ memoryMiB: MEMORY_MIB, paused: true });
    await expect(saveTemplate(vm, join(runtime, "x.state"))).rejects.toMatchObject({ code: "E_VM_SNAPSHOT" });
    await expect(restore(vm, join(runtime, "x.state"))).rejects.toMatchObject({ code: "E_VM_SNAPSHOT" });
  });

  it("resolves `exited` when QEMU is killed from outside, and kill() still cleans up", async () => {
    const vm = await start({ memoryMiB: MEMORY_MIB });
    process.kill(vm.pid, "SIGKILL");
    expect(await vm.exited).toEqual({ code: null, signal: "SIGKILL" });
    expect(vm.hasExited).toBe(true);
    expect(await vm.qmp.closed).toBeDefined();
    await vm.kill();
    expect(existsSync(vm.dir)).toBe(false);
    expect(vm.cgroup!.paths.filter((p) => existsSync(p))).toEqual([]);
  });

  it("a QEMU that cannot start rejects with E_VM_START carrying its complaint, and leaves nothing", async () => {
    const id = `vm-bad-${process.pid}`;
    const err = await startVm({ id, memoryMiB: MEMORY_MIB, rootImage: join(runtime, "no-such-image.raw") }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "E_VM_START" });
    expect((err as Error).message).toMatch(/no-such-image\.raw/);
    expect(readdirSync(join(runtime, "vms")).flatMap((owner) => readdirSync(join(runtime, "vms", owner)))).not.toContain(id);
    expect(pidsWithMarker(id)).toEqual([]);
  });

  it("attaches a tap inside the sandbox's network namespace when the VM has network", async () => {
    const ns = `lg-mvm-${process.pid}`;
    const ip = (...args: string[]): string => execFileSync("ip", args, { encoding: "utf8" });
    ip("netns", "add", ns);
    try {
      ip("-n", ns, "tuntap", "add", "dev", "lgtap0", "mode", "tap", "user", String(VM_UID));
      ip("-n", ns, "link", "set", "lgtap0", "up");
      expect(ip("-n", ns, "link", "show", "lgtap0")).toContain("NO-CARRIER");
      const vm = await start({ memoryMiB: MEMORY_MIB, network: { ifname: "lgtap0", mac: "52:54:00:12:34:56", netnsPath: `/run/netns/${ns}` } });
      const info = await vm.qmp.execute<string>("human-monitor-command", { "command-line": "info network" });
      expect(info).toContain("macaddr=52:54:00:12:34:56");
      expect(info).toContain("ifname=lgtap0");
      // QEMU holds the tap open (carrier up) from inside that namespace.
      expect(ip("-n", ns, "link", "show", "lgtap0")).not.toContain("NO-CARRIER");
      expect(statSync(`/proc/${vm.pid}/ns/net`).ino).toBe(statSync(`/run/netns/${ns}`).ino);
      await vm.kill();
      expect(ip("-n", ns, "link", "show", "lgtap0")).toContain("NO-CARRIER");
    } finally {
      await Promise.all(vms.splice(0).map((vm) => vm.kill()));
      ip("netns", "del", ns);
    }
  });

  it("a LuminaGuard killed with SIGKILL leaves no QEMU behind, and the sweep removes the rest", async () => {
    const built = join(import.meta.dirname, "../../dist/sandbox/microvm/vm-process.js");
    if (!existsSync(built)) throw new Error("dist/ is missing: run `make build` (make test does it) before this test.");
    const script = `import { startVm } from ${JSON.stringify(built)};
      const vm = await startVm({ memoryMiB: ${MEMORY_MIB} });
      console.log(JSON.stringify({ pid: vm.pid, dir: vm.dir, cgroups: vm.cgroup.paths }));
      process.kill(process.pid, "SIGKILL");`;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, LUMINAGUARD_RUNTIME_DIR: runtime }, stdio: ["ignore", "pipe", "inherit"] });
      let text = "";
      child.stdout.on("data", (d: Buffer) => (text += d.toString()));
      child.once("error", reject);
      child.once("close", (_code, signal) => (signal === "SIGKILL" ? resolve(text) : reject(new Error(`helper ended with ${signal}: ${text}`))));
    });
    const orphan = JSON.parse(out) as { pid: number; dir: string; cgroups: string[] };
    // bwrap died with its parent, its init with bwrap, and QEMU with the namespace.
    expect(await eventually(() => goneOrZombie(orphan.pid), 5000)).toBe(true);
    expect(existsSync(orphan.dir)).toBe(true);
    const removed = await sweepStaleVms();
    expect(removed).toContain(dirname(orphan.dir));
    expect(existsSync(orphan.dir)).toBe(false);
    expect(orphan.cgroups.filter((p) => existsSync(p))).toEqual([]);
  });

  it("sweeps folders and /dev/shm files of dead owners only", async () => {
    const live = await start({ memoryMiB: MEMORY_MIB });
    // pid 4194303 with start time 7 cannot be a live process.
    const deadDir = join(runtime, "vms", "pid-4194303-7", "vm-dead");
    mkdirSync(deadDir, { recursive: true });
    const deadShm = "/dev/shm/luminaguard-vm-pid-4194303-7-t.ram";
    writeFileSync(deadShm, "x");
    const liveShm = (await createTemplateFiles(`sweep-${process.pid}`, 16));
    templates.push(liveShm);

    const removed = await sweepStaleVms();
    expect(removed).toContain(join(runtime, "vms", "pid-4194303-7"));
    expect(removed).toContain(deadShm);
    expect(existsSync(deadShm)).toBe(false);
    expect(existsSync(liveShm.ramPath)).toBe(true);
    expect(existsSync(live.dir)).toBe(true);
    expect(await live.qmp.execute("query-status")).toMatchObject({ status: "running" });
    expect(await eventually(() => !live.hasExited, 100)).toBe(true);
  });
});
