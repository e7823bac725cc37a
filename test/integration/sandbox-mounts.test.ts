/**
 * `SandboxSpec.mounts`: host paths shown read-only inside a sandbox (how an MCP
 * server's code gets in). The sandbox can read them and cannot change them, on
 * every backend that can see host paths; the micro-VM refuses them plainly.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Backend } from "../../src/sandbox/types.js";
import { NamespaceBackend } from "../../src/sandbox/namespace/backend.js";
import { GvisorBackend } from "../../src/sandbox/gvisor/backend.js";
import { MicrovmBackend } from "../../src/sandbox/microvm/backend.js";
import { collect } from "../../src/sandbox/collect.js";
import { parseConfig } from "../../src/config/load.js";
import { toSandboxSpec } from "../../src/config/schema.js";
import { announceSkip, gvisorSkipReason, namespaceSkipReason } from "../helpers/capabilities.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lg-mount-"));
  await chmod(dir, 0o755);
  await writeFile(join(dir, "data.txt"), "from the host\n", { mode: 0o644 });
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const cases: [string, string | undefined, () => Backend][] = [
  ["namespace", namespaceSkipReason(), () => new NamespaceBackend()],
  ["gvisor", gvisorSkipReason(), () => new GvisorBackend()],
];

for (const [name, skip, make] of cases) {
  announceSkip(`read-only mounts on ${name}`, skip);
  describe.skipIf(skip)(`read-only mounts on the ${name} backend`, () => {
    it("shows the host folder at its target, readable and not writable", async () => {
      const backend = make();
      const spec = toSandboxSpec(parseConfig({ sandbox: { backend: name, mounts: [{ source: dir, target: "/opt/data" }] } }).sandbox);
      const sb = await backend.create(spec);
      try {
        const read = await collect(sb.exec(["cat", "/opt/data/data.txt"]));
        expect(read.stdout.toString()).toBe("from the host\n");
        expect(read.result.exitCode).toBe(0);
        const write = await collect(sb.exec(["sh", "-c", "echo changed > /opt/data/data.txt"]));
        expect(write.result.exitCode).toBe(2);
        expect(write.stderr.toString()).toMatch(/Read-only file system|Permission denied/);
        const create = await collect(sb.exec(["sh", "-c", "echo new > /opt/data/new.txt"]));
        expect(create.result.exitCode).toBe(2);
      } finally {
        await sb.destroy();
        await backend.close?.();
      }
      expect(await readFile(join(dir, "data.txt"), "utf8")).toBe("from the host\n");
    }, 60_000);

    it("refuses a missing source and a reserved target with E_MOUNT before starting anything", async () => {
      const backend = make();
      try {
        const missing = { ...toSandboxSpec(parseConfig({ sandbox: { backend: name } }).sandbox), mounts: [{ source: join(dir, "nope"), target: "/opt/x" }] };
        await expect(backend.create(missing)).rejects.toMatchObject({ code: "E_MOUNT", message: expect.stringContaining("does not exist") });
        // A library caller that skips the config schema still cannot cover /workspace.
        const reserved = { ...missing, mounts: [{ source: dir, target: "/workspace" }] };
        await expect(backend.create(reserved)).rejects.toMatchObject({ code: "E_MOUNT", message: expect.stringContaining("own areas") });
      } finally {
        await backend.close?.();
      }
    });
  });
}

describe("read-only mounts on the micro-VM backend", () => {
  it("are refused with E_MOUNT and a way out, without starting QEMU", async () => {
    const backend = new MicrovmBackend({ snapshots: false });
    const spec = toSandboxSpec(parseConfig({ sandbox: { backend: "microvm", mounts: [{ source: dir, target: "/opt/data" }] } }).sandbox);
    await expect(backend.create(spec)).rejects.toMatchObject({ code: "E_MOUNT", message: expect.stringContaining("sandbox.files") });
    await backend.close();
  });
});
