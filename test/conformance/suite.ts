/**
 * The backend conformance suite: the behaviour every Backend must show, whatever
 * isolates it. A new backend passes this file unchanged before it ships.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Backend, Sandbox, SandboxSpec } from "../../src/sandbox/types.js";
import { collect } from "../../src/sandbox/collect.js";
import { SandboxError } from "../../src/sandbox/errors.js";
import { eventually, pidsWithMarker } from "../helpers/procs.js";

export interface ConformanceTarget {
  name: string;
  /** Why this backend cannot run here (printed), or undefined. */
  skip: string | undefined;
  backend: () => Backend;
  spec: SandboxSpec;
  /** Host resources of this backend still present (folders, cgroups, processes); empty when clean. */
  leftovers: (sandboxIds: string[]) => Promise<string[]>;
  /**
   * How many processes whose command line contains `marker` still run in `sb`.
   * Default: host processes (namespace sandboxes run on the host kernel); a VM
   * backend asks its guest, and a destroyed VM has none.
   */
  processesWithMarker?: (sb: Sandbox, marker: string) => Promise<number>;
}

const text = (b: Uint8Array): string => Buffer.from(b).toString("utf8");

async function rejection(p: Promise<unknown>): Promise<SandboxError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SandboxError);
  return err as SandboxError;
}

export function defineConformanceSuite(t: ConformanceTarget): void {
  describe.skipIf(t.skip !== undefined)(`backend conformance: ${t.name}`, () => {
    const backend = t.skip ? undefined : t.backend();
    const made: Sandbox[] = [];
    const fresh = async (spec: Partial<SandboxSpec> = {}): Promise<Sandbox> => {
      const sb = await backend!.create({ ...t.spec, ...spec });
      made.push(sb);
      return sb;
    };
    const running = (sb: Sandbox, marker: string): Promise<number> =>
      t.processesWithMarker ? t.processesWithMarker(sb, marker) : Promise.resolve(pidsWithMarker(marker).length);
    afterEach(async () => {
      await Promise.allSettled(made.map((s) => s.destroy()));
    });
    afterAll(async () => {
      const ids = made.map((s) => s.id);
      made.length = 0;
      expect(await t.leftovers(ids)).toEqual([]);
    });

    it("runs a command and reports its exit code, output and duration", async () => {
      const sb = await fresh();
      const r = await collect(sb.exec(["sh", "-c", "echo out; echo err >&2; exit 3"]));
      expect(text(r.stdout)).toBe("out\n");
      expect(text(r.stderr)).toBe("err\n");
      expect(r.result.exitCode).toBe(3);
      expect(r.result.signal).toBeNull();
      expect(r.result.durationMs).toBeGreaterThan(0);
    });

    it("streams output as it is produced, before the command ends", async () => {
      const sb = await fresh();
      const h = sb.exec(["sh", "-c", "echo first; sleep 2; echo second"]);
      const it = h.stdout[Symbol.asyncIterator]();
      const first = await it.next();
      const firstAt = Date.now();
      // Relative to the command's own pause, not to the wall clock: a slow (emulated) sandbox
      // may start late, but a buffering one delivers "first" together with "second".
      expect(text(first.value as Uint8Array)).toBe("first\n");
      let rest = "";
      for (let n = await it.next(); !n.done; n = await it.next()) rest += text(n.value);
      expect(rest).toBe("second\n");
      expect((await h.wait()).exitCode).toBe(0);
      expect(Date.now() - firstAt).toBeGreaterThan(1500);
    });

    it("passes stdin given up front and written interactively", async () => {
      const sb = await fresh();
      const upfront = await collect(sb.exec(["cat"], { stdin: "given\n" }));
      expect(text(upfront.stdout)).toBe("given\n");
      const h = sb.exec(["sh", "-c", "read a; echo got:$a; read b; echo got:$b"]);
      const out = collect(h);
      await h.write("one\n");
      await h.write("two\n");
      h.closeStdin();
      expect(text((await out).stdout)).toBe("got:one\ngot:two\n");
    });

    it("sets env and cwd and inherits nothing from the host environment", async () => {
      process.env.LG_CONFORMANCE_SECRET = "host-only";
      const sb = await fresh();
      const r = await collect(sb.exec(["sh", "-c", 'echo "$GREETING|$LG_CONFORMANCE_SECRET|$(pwd)"'], { env: { GREETING: "hi" }, cwd: "/tmp" }));
      delete process.env.LG_CONFORMANCE_SECRET;
      expect(text(r.stdout)).toBe("hi||/tmp\n");
    });

    it("reports a death by signal", async () => {
      const sb = await fresh();
      const r = await collect(sb.exec(["sh", "-c", "kill -9 $$"]));
      expect(r.result.exitCode).toBeNull();
      expect(r.result.signal).toBe("SIGKILL");
    });

    it("delivers kill(SIGTERM) to the command", async () => {
      const sb = await fresh();
      const h = sb.exec(["sh", "-c", "echo ready; exec sleep 30"]);
      // The command has started (not just the launcher) once it speaks.
      const first = await h.stdout[Symbol.asyncIterator]().next();
      expect(text(first.value as Uint8Array)).toBe("ready\n");
      h.kill("SIGTERM");
      const r = await collect(h);
      expect(r.result.signal).toBe("SIGTERM");
      expect(r.result.durationMs).toBeLessThan(10_000);
    });

    it("kills the whole process tree on timeout", async () => {
      const sb = await fresh();
      const marker = `lgmark-timeout-${process.pid}-${Date.now()}`;
      const h = sb.exec(["sh", "-c", `(sleep 300; echo ${marker}) & (sh -c 'sleep 300; echo ${marker}' &) ; sleep 300 # ${marker}`], { timeoutMs: 400 });
      const err = await rejection(collect(h));
      expect(err.code).toBe("E_EXEC_TIMEOUT");
      expect(await eventually(async () => (await running(sb, marker)) === 0)).toBe(true);
    });

    it("kills the whole process tree on abort", async () => {
      const sb = await fresh();
      const marker = `lgmark-abort-${process.pid}-${Date.now()}`;
      const ac = new AbortController();
      const h = sb.exec(["sh", "-c", `(sleep 300; echo ${marker}) & sleep 300 # ${marker}`], { signal: ac.signal });
      setTimeout(() => ac.abort(), 200);
      const err = await rejection(collect(h));
      expect(err.code).toBe("E_EXEC_ABORTED");
      expect(await eventually(async () => (await running(sb, marker)) === 0)).toBe(true);
    });

    it("writes, reads, lists and removes files, shared with commands", async () => {
      const sb = await fresh();
      const binary = new Uint8Array([0, 1, 2, 255, 10, 13, 0]);
      await sb.files.write("data/blob.bin", binary);
      await sb.files.write("/tmp/note.txt", "hello\n");
      expect(Array.from(await sb.files.read("/workspace/data/blob.bin"))).toEqual(Array.from(binary));
      const viaExec = await collect(sb.exec(["sh", "-c", "cat /tmp/note.txt; echo made > /workspace/made.txt"]));
      expect(text(viaExec.stdout)).toBe("hello\n");
      expect(text(await sb.files.read("made.txt"))).toBe("made\n");
      const listing = await sb.files.list("/workspace");
      expect(listing.map((e) => [e.name, e.type])).toEqual([
        ["data", "dir"],
        ["made.txt", "file"],
      ]);
      expect((await sb.files.list("data"))[0]).toEqual({ name: "blob.bin", type: "file", size: 7 });
      await sb.files.remove("made.txt");
      await expect(sb.files.read("made.txt")).rejects.toMatchObject({ code: "E_FILE_NOT_FOUND" });
      await expect(sb.files.remove("data")).rejects.toMatchObject({ code: "E_FILE_IO" });
      await sb.files.remove("data", { recursive: true });
      expect(await sb.files.list("/workspace")).toEqual([]);
    });

    it("enforces file size limits and writable-area paths", async () => {
      const sb = await fresh({ maxFileBytes: 1024 });
      await expect(sb.files.write("big", new Uint8Array(2048))).rejects.toMatchObject({ code: "E_FILE_TOO_LARGE" });
      await collect(sb.exec(["sh", "-c", "head -c 4096 /dev/zero > /workspace/big"]));
      await expect(sb.files.read("big")).rejects.toMatchObject({ code: "E_FILE_TOO_LARGE" });
      for (const p of ["/etc/passwd", "../etc/passwd", "/workspace/../etc/hosts", ""]) {
        await expect(sb.files.read(p)).rejects.toMatchObject({ code: "E_FILE_PATH" });
      }
      await expect(sb.files.read("missing.txt")).rejects.toMatchObject({ code: "E_FILE_NOT_FOUND" });
    });

    it("keeps sandboxes apart from each other", async () => {
      const [a, b] = await Promise.all([fresh(), fresh()]);
      await a.files.write("only-a.txt", "a");
      await collect(a.exec(["sh", "-c", "echo a > /tmp/a"]));
      const r = await collect(b.exec(["sh", "-c", "ls /workspace /tmp"]));
      expect(text(r.stdout)).not.toContain("only-a");
      expect(text(r.stdout)).not.toMatch(/\ba\b/);
    });

    it("destroy is idempotent, kills running commands and refuses later use", async () => {
      const sb = await fresh();
      const marker = `lgmark-destroy-${process.pid}-${Date.now()}`;
      const h = sb.exec(["sh", "-c", `sleep 300 # ${marker}`]);
      const out = collect(h).catch((e: unknown) => e);
      await eventually(async () => (await running(sb, marker)) > 0);
      await Promise.all([sb.destroy(), sb.destroy()]);
      await sb.destroy();
      expect(sb.destroyed).toBe(true);
      await out;
      expect(await eventually(async () => (await running(sb, marker)) === 0)).toBe(true);
      expect(() => sb.exec(["true"])).toThrow(expect.objectContaining({ code: "E_SANDBOX_DESTROYED" }));
      expect(await t.leftovers([sb.id])).toEqual([]);
    });

    it("rejects a bad argv, env or cwd with a typed error", async () => {
      const sb = await fresh();
      expect(() => sb.exec([])).toThrow(expect.objectContaining({ code: "E_EXEC_INVALID" }));
      expect(() => sb.exec(["true"], { env: { "BAD=NAME": "x" } })).toThrow(expect.objectContaining({ code: "E_EXEC_INVALID" }));
      expect(() => sb.exec(["true"], { cwd: "relative" })).toThrow(expect.objectContaining({ code: "E_EXEC_INVALID" }));
    });
  });
}
