/**
 * The QEMU and jail command lines, pinned: a change to the device set or to an
 * isolation flag must show up here as a deliberate diff.
 */
import { describe, expect, it } from "vitest";
import { microvmMachine, qemuArgs, tcgKernelParams, type QemuInput } from "../../src/sandbox/microvm/qemu-args.js";
import { jailArgs, type JailInput } from "../../src/sandbox/microvm/jail-args.js";

const DIR = "/run/lg/vms/pid-1-2/vm-a";

const base: QemuInput = {
  binary: "/usr/bin/qemu-system-x86_64",
  name: "vm-a",
  accel: "tcg",
  tcg: { tbSizeMiB: 64 },
  cpus: 1,
  memoryMiB: 256,
  ram: { kind: "anonymous" },
  qmpSocket: `${DIR}/qmp.sock`,
};

describe("qemuArgs", () => {
  it("a bare TCG VM: microvm without option ROMs, no serial, QMP, QEMU's own seccomp", () => {
    expect(qemuArgs(base)).toEqual([
      "-name", "vm-a",
      "-nodefaults", "-no-user-config", "-display", "none",
      "-M", "microvm,x-option-roms=off,pit=on,pic=on,rtc=on,isa-serial=off,acpi=on,dump-guest-core=off,mem-merge=off",
      "-accel", "tcg,tb-size=64",
      "-smp", "1", "-m", "256M",
      "-no-reboot",
      "-chardev", `socket,id=qmp,path=${DIR}/qmp.sock,server=on,wait=off`, "-mon", "chardev=qmp,mode=control",
      "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    ]);
  });

  it("a template: kernel, read-only root, agent channel, console, RAM in a shared file", () => {
    const args = qemuArgs({
      ...base,
      cpus: 2,
      tcg: { thread: "single", tbSizeMiB: 32 },
      ram: { kind: "shared-file", path: "/dev/shm/luminaguard-vm-pid-1-2-t.ram" },
      kernel: { path: "/img/vmlinuz", initrd: "/img/initrd", cmdline: "console=ttyS0 quiet panic=-1" },
      rootImage: "/img/rootfs.ext4",
      agentSocket: `${DIR}/agent.sock`,
      consoleSocket: `${DIR}/console.sock`,
      paused: true,
    });
    expect(args).toEqual([
      "-name", "vm-a",
      "-nodefaults", "-no-user-config", "-display", "none",
      "-M", "microvm,x-option-roms=off,pit=on,pic=on,rtc=on,isa-serial=on,acpi=on,dump-guest-core=off,mem-merge=off,memory-backend=mem",
      "-accel", "tcg,thread=single,tb-size=32",
      "-smp", "2", "-m", "256M",
      "-object", "memory-backend-file,id=mem,size=256M,mem-path=/dev/shm/luminaguard-vm-pid-1-2-t.ram,share=on",
      "-no-reboot",
      "-kernel", "/img/vmlinuz", "-initrd", "/img/initrd", "-append", "console=ttyS0 quiet panic=-1",
      "-drive", "file=/img/rootfs.ext4,if=none,format=raw,readonly=on,id=root", "-device", "virtio-blk-device,drive=root",
      "-device", "virtio-serial-device,max_ports=2",
      "-chardev", `socket,id=agent,path=${DIR}/agent.sock,server=on,wait=off`,
      "-device", "virtserialport,chardev=agent,name=lg.agent,id=lgagentport",
      "-chardev", `socket,id=console,path=${DIR}/console.sock,server=on,wait=off`, "-serial", "chardev:console",
      "-chardev", `socket,id=qmp,path=${DIR}/qmp.sock,server=on,wait=off`, "-mon", "chardev=qmp,mode=control",
      "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
      "-S",
    ]);
  });

  it("a clone maps the template RAM privately and waits for migrate-incoming", () => {
    const args = qemuArgs({ ...base, ram: { kind: "private-file", path: "/dev/shm/t.ram" }, incoming: true, paused: true });
    expect(args).toContain("memory-backend-file,id=mem,size=256M,mem-path=/dev/shm/t.ram,share=off");
    expect(args.slice(-3)).toEqual(["-S", "-incoming", "defer"]);
    // QEMU >= 8.2 can open the file read-only for a private mapping.
    const ro = qemuArgs({ ...base, ram: { kind: "private-file", path: "/dev/shm/t.ram", readOnlyOpen: true }, incoming: true });
    expect(ro).toContain("memory-backend-file,id=mem,size=256M,mem-path=/dev/shm/t.ram,share=off,readonly=on,rom=off");
  });

  it("template and clone differ only in RAM sharing, -incoming and per-VM paths", () => {
    const common = { ...base, kernel: { path: "/k", cmdline: "quiet" }, rootImage: "/r", agentSocket: `${DIR}/agent.sock` };
    const t = qemuArgs({ ...common, ram: { kind: "shared-file", path: "/dev/shm/t.ram" } });
    const c = qemuArgs({ ...common, ram: { kind: "private-file", path: "/dev/shm/t.ram" }, incoming: true });
    const devices = (a: string[]): string[] => a.filter((_, i) => a[i - 1] === "-device" || a[i - 1] === "-M");
    expect(devices(c)).toEqual(devices(t));
  });

  it("network only when asked: a tap by name or by fd, with a fixed MAC", () => {
    expect(qemuArgs(base).join(" ")).not.toMatch(/netdev|virtio-net/);
    const byName = qemuArgs({ ...base, network: { ifname: "lgtap0", mac: "52:54:00:12:34:56" } });
    expect(byName).toEqual(expect.arrayContaining(["-netdev", "tap,id=net0,ifname=lgtap0,script=no,downscript=no", "-device", "virtio-net-device,netdev=net0,mac=52:54:00:12:34:56"]));
    const byFd = qemuArgs({ ...base, network: { fd: 5 } });
    expect(byFd).toEqual(expect.arrayContaining(["-netdev", "tap,id=net0,fd=5", "-device", "virtio-net-device,netdev=net0"]));
  });

  it("KVM: host CPU, QEMU picks PIT/PIC, no TCG options", () => {
    const args = qemuArgs({ ...base, accel: "kvm" });
    expect(args).toEqual(expect.arrayContaining(["-accel", "kvm", "-cpu", "host"]));
    expect(microvmMachine("kvm", { serial: false, memoryBackend: false })).toBe("microvm,x-option-roms=off,isa-serial=off,acpi=on,dump-guest-core=off,mem-merge=off");
  });

  it("escapes commas in paths inside option lists", () => {
    const args = qemuArgs({ ...base, qmpSocket: "/tmp/a,b/qmp.sock", rootImage: "/img/x,readonly=off" });
    expect(args).toContain("socket,id=qmp,path=/tmp/a,,b/qmp.sock,server=on,wait=off");
    expect(args).toContain("file=/img/x,,readonly=off,if=none,format=raw,readonly=on,id=root");
  });

  it("refuses inputs that would make a wrong or unsafe VM", () => {
    expect(() => qemuArgs({ ...base, name: "a,b" })).toThrow(/name/);
    expect(() => qemuArgs({ ...base, cpus: 0 })).toThrow(/cpus/);
    expect(() => qemuArgs({ ...base, memoryMiB: 8 })).toThrow(/memoryMiB/);
    expect(() => qemuArgs({ ...base, qmpSocket: "relative.sock" })).toThrow(/absolute/);
    expect(() => qemuArgs({ ...base, network: { ifname: "bad name" } })).toThrow(/ifname/);
    expect(() => qemuArgs({ ...base, network: { ifname: "tap0", mac: "zz" } })).toThrow(/mac/);
    // A clone that wrote through to the template's file would change every later clone.
    expect(() => qemuArgs({ ...base, ram: { kind: "shared-file", path: "/dev/shm/t" }, incoming: true })).toThrow(/privately/);
    expect(() => qemuArgs({ ...base, cpus: 0 })).toThrow(expect.objectContaining({ code: "E_USAGE" }));
  });

  it("tcgKernelParams hands the guest the host TSC rate", () => {
    expect(tcgKernelParams(2095992.4)).toEqual(["tsc_early_khz=2095992", "tsc=reliable"]);
  });
});

describe("jailArgs", () => {
  const jail: JailInput = {
    mode: "root",
    uid: 65534,
    gid: 65534,
    hostname: "vm-a",
    view: [
      { kind: "ro-bind", path: "/usr" },
      { kind: "symlink", path: "/lib", target: "usr/lib" },
      { kind: "ro-bind", path: "/etc/ld.so.cache" },
    ],
    readOnly: ["/root/.cache/img/vmlinuz"],
    readWrite: [DIR, "/dev/shm/t.ram"],
    devices: [],
    unshareNet: true,
    seccompFd: 3,
    argv: ["/usr/bin/qemu-system-x86_64", "-name", "vm-a"],
  };

  it("as root: privileged bwrap, no user namespace, setpriv drops to the VM uid with nothing left", () => {
    expect(jailArgs(jail)).toEqual([
      "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--unshare-net",
      "--hostname", "vm-a",
      "--die-with-parent", "--new-session",
      "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP",
      "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache",
      "--dev", "/dev",
      "--perms", "0755", "--dir", "/root",
      "--perms", "0755", "--dir", "/root/.cache",
      "--perms", "0755", "--dir", "/root/.cache/img",
      "--perms", "0755", "--dir", "/run",
      "--perms", "0755", "--dir", "/run/lg",
      "--perms", "0755", "--dir", "/run/lg/vms",
      "--perms", "0755", "--dir", "/run/lg/vms/pid-1-2",
      "--ro-bind", "/root/.cache/img/vmlinuz", "/root/.cache/img/vmlinuz",
      "--bind", DIR, DIR,
      "--bind", "/dev/shm/t.ram", "/dev/shm/t.ram",
      "--remount-ro", "/", "--chdir", "/", "--clearenv",
      "--seccomp", "3",
      "--",
      "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
      "/usr/bin/qemu-system-x86_64", "-name", "vm-a",
    ]);
  });

  it("as a user: a user namespace without nested ones, no setpriv", () => {
    const a = jailArgs({ ...jail, mode: "user", uid: 1000, gid: 1000, seccompFd: undefined });
    expect(a.slice(0, 6)).toEqual(["--unshare-user", "--disable-userns", "--uid", "1000", "--gid", "1000"]);
    expect(a).not.toContain("--cap-drop");
    expect(a).not.toContain("--seccomp");
    expect(a.slice(a.indexOf("--") + 1)).toEqual(["/usr/bin/qemu-system-x86_64", "-name", "vm-a"]);
  });

  it("keeps the caller's network namespace for a tap, and binds the devices QEMU opens", () => {
    const a = jailArgs({ ...jail, unshareNet: false, devices: ["/dev/kvm", [`${DIR}/net-tun`, "/dev/net/tun"]] });
    expect(a).not.toContain("--unshare-net");
    expect(a.join(" ")).toContain(`--dev /dev --dev-bind /dev/kvm /dev/kvm --perms 0755 --dir /dev/net --dev-bind ${DIR}/net-tun /dev/net/tun`);
  });
});
