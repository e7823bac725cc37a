/**
 * limits.disk on the host: the size-limited tmpfs a namespace sandbox's /tmp and
 * /workspace live on, its ENOSPC, its sweep after a crash, and what it does not
 * bound (a caller's workspace folder). The storm with a neighbour is in test/chaos/storms.test.ts.
 */
import { chmodSync, chownSync, mkdirSync, symlinkSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ownScratchDir, sweepStaleScratch } from "../../src/sandbox/namespace/scratch.js";
import { mountScratchDisk } from "../../src/sandbox/scratch-disk.js";
import { NamespaceBackend } from "../../src/sandbox/namespace/backend.js";
import { collect } from "../../src/sandbox/collect.js";
import { parseConfig } from "../../src/config/load.js";
import { toSandboxSpec } from "../../src/config/schema.js";
import type { Sandbox } from "../../src/sandbox/types.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { namespaceLeftovers } from "../helpers/leftovers.js";

const MiB = 1024 * 1024;
const notRoot = process.getuid?.() !== 0 ? "mounting a tmpfs needs root" : undefined;
announceSkip("scratch disks: mount and sweep", notRoot);
const skip = namespaceSkipReason() ?? notRoot;
announceSkip("scratch disks in namespace sandboxes", skip);

const mounted = (dir: string): boolean => readFileSync("/proc/self/mountinfo", "utf8").includes(` ${dir} `);
const spec = (sandbox: Record<string, unknown>) => toSandboxSpec(parseConfig({ sandbox }).sandbox);

describe.skipIf(notRoot !== undefined)("scratch disk mounts", () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
  const fresh = (): string => {
    const d = mkdtempSync(join(tmpdir(), "lg-disk-"));
    dirs.push(d);
    return d;
  };

  it("refuses writes past its size with ENOSPC, says it is full, and unmounts once", async () => {
    const root = fresh();
    const disk = await mountScratchDisk(root, "sb-small", MiB);
    try {
      expect(statSync(root).mode & 0o777).toBe(0o711);
      expect(await disk.full()).toBe(false);
      expect(() => writeFileSync(join(root, "big"), Buffer.alloc(2 * MiB))).toThrow(expect.objectContaining({ code: "ENOSPC" }));
      expect(await disk.full()).toBe(true);
      expect(await disk.usedBytes()).toBe(MiB);
    } finally {
      await disk.release();
      await disk.release();
    }
    expect(mounted(root)).toBe(false);
    expect(await disk.full()).toBe(false);
  });

  it("the sweep unmounts a dead owner's scratch disks before removing them, and leaves a live owner's", async () => {
    const root = fresh();
    const mine = join(await ownScratchDir(root), "sb-live");
    // pid 1 with another start time: a reused pid, so that owner is gone.
    const dead = join(root, "pid-1-12345", "sb-dead");
    [mine, dead].forEach((d) => mkdirSync(d, { recursive: true }));
    const disks = await Promise.all([mountScratchDisk(mine, "sb-live", MiB), mountScratchDisk(dead, "sb-dead", MiB)]);
    try {
      writeFileSync(join(dead, "file"), "x");
      expect([mounted(mine), mounted(dead)]).toEqual([true, true]);
      expect(await sweepStaleScratch(root)).toEqual([join(root, "pid-1-12345")]);
      expect(mounted(dead)).toBe(false);
      expect(mounted(mine)).toBe(true);
    } finally {
      await Promise.all(disks.map((d) => d.release()));
    }
  });
  it("the sweep finds the mounts of a runtime folder reached through a symlink (mountinfo names the real path)", async () => {
    const real = fresh();
    const link = `${real}-link`;
    symlinkSync(real, link);
    dirs.push(link);
    const dead = join(real, "pid-1-12345", "sb-dead");
    mkdirSync(dead, { recursive: true });
    await mountScratchDisk(dead, "sb-dead", MiB);
    expect(await sweepStaleScratch(link)).toEqual([join(link, "pid-1-12345")]);
    expect(mounted(dead)).toBe(false);
  });
});

describe.skipIf(skip !== undefined)("scratch disks in namespace sandboxes", () => {
  const backend = new NamespaceBackend();
  const made: Sandbox[] = [];
  const host = mkdtempSync(join(tmpdir(), "lg-disk-ws-"));
  afterAll(async () => {
    await Promise.allSettled(made.map((s) => s.destroy()));
    rmSync(host, { recursive: true, force: true });
    expect(await namespaceLeftovers(made.map((s) => s.id))).toEqual([]);
  });
  const create = async (sandbox: Record<string, unknown>): Promise<Sandbox> => {
    const sb = await backend.create(spec(sandbox));
    made.push(sb);
    return sb;
  };

  it("files.write into a full disk fails with E_DISK_FULL, and freeing space lets it through", async () => {
    const sb = await create({ limits: { disk: "4M" } });
    const fill = await collect(sb.exec(["sh", "-c", "dd if=/dev/zero of=/workspace/fill bs=1M count=8 2>/dev/null; echo $?"]));
    expect(fill.stdout.toString()).toBe("1\n");
    expect(fill.result.diskFull).toBe(true);
    await expect(sb.files.write("/tmp/note", "x".repeat(64 * 1024))).rejects.toMatchObject({ code: "E_DISK_FULL", message: expect.stringMatching(/Raise --disk/) });
    await sb.files.remove("/workspace/fill");
    await sb.files.write("/tmp/note", "fits");
    expect(Buffer.from(await sb.files.read("/tmp/note")).toString()).toBe("fits");
    const after = await collect(sb.exec(["true"]));
    expect(after.result.diskFull).toBeUndefined();
  }, 30_000);

  it("a caller's workspace is the caller's folder on the host disk (not bounded); /tmp still is", async () => {
    const ws = join(host, "ws");
    mkdirSync(ws);
    // An ordinary user's folder behind a searchable parent: the sandbox runs as its owner.
    chmodSync(host, 0o711);
    chownSync(ws, 4242, 4242);
    const sb = await create({ workspace: ws, limits: { disk: "4M" } });
    const r = await collect(sb.exec(["sh", "-c", "dd if=/dev/zero of=/workspace/big bs=1M count=8 2>/dev/null; echo ws=$?; dd if=/dev/zero of=/tmp/big bs=1M count=8 2>/dev/null; echo tmp=$?"]));
    expect(r.stdout.toString()).toBe("ws=0\ntmp=1\n");
    expect(statSync(join(ws, "big")).size).toBe(8 * MiB);
    expect(r.result.diskFull).toBe(true);
  }, 30_000);

  it("files count toward the memory limit: past it, the writer is OOM-killed and E_OOM says how much the files hold", async () => {
    const sb = await create({ limits: { memory: "48M", disk: "256M" } });
    const err = await collect(sb.exec(["sh", "-c", "dd if=/dev/zero of=/tmp/fill bs=1M count=96"], { timeoutMs: 30_000 })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "E_OOM", message: expect.stringMatching(/Files in \/tmp and \/workspace count toward it \(\d+(\.\d)? MiB now\)/) });
    // Deleting the files gives the memory back: the sandbox works again.
    const after = await collect(sb.exec(["sh", "-c", "rm -f /tmp/fill; head -c 16000000 /dev/zero > /tmp/again && echo ok"]));
    expect(after.stdout.toString()).toBe("ok\n");
  }, 60_000);

  it("destroy unmounts the disk and removes its folder", async () => {
    const sb = await create({ limits: { disk: "8M" } });
    const line = readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.includes(`luminaguard-${sb.id}`));
    expect(line).toMatch(/ tmpfs luminaguard-sb-[0-9a-f]+ rw,.*size=8192k/);
    await sb.destroy();
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(sb.id);
    expect(await namespaceLeftovers([sb.id])).toEqual([]);
  });
});
