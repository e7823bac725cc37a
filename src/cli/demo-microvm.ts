/**
 * The demo's micro-VM part: boot one snapshot template, then take clones of it
 * and show that each is a machine of its own (its own kernel, reseeded so no two
 * clones share random state) that still refuses the escapes.
 */
import { release } from "node:os";
import { collect } from "../sandbox/collect.js";
import { parseConfig } from "../config/load.js";
import { toSandboxSpec } from "../config/schema.js";
import { LuminaError } from "../errors.js";
import type { Sandbox } from "../sandbox/types.js";
import { style } from "./style.js";
import type { SandboxSource } from "../mcp/sandboxes.js";

const say = (line = ""): void => void process.stdout.write(`${line}\n`);

async function out(sb: Sandbox, script: string): Promise<{ text: string; code: number | null }> {
  const r = await collect(sb.exec(["sh", "-c", script], { timeoutMs: 30_000 }));
  return { text: (r.stdout.toString() + r.stderr.toString()).trim(), code: r.result.exitCode };
}

/** The VM shape of the demo's sandboxes: one template serves the VM part and the agent part. */
export const DEMO_VM_LIMITS: { memoryBytes: string; pids: number } = { memoryBytes: "256M", pids: 64 };

/**
 * Returns false when an escape got through; a host without QEMU or an image skips
 * (true, and `then` is not called). `then` runs while the backend is still up, so
 * the agent part clones the same template instead of booting another.
 */
export async function microvmDemo(then?: (source: SandboxSource) => Promise<boolean>): Promise<{ ok: boolean; ran: boolean }> {
  say(style.bold("6. Micro-VMs: a kernel of their own, cloned from a snapshot"));
  const { MicrovmBackend } = await import("../sandbox/microvm/backend.js");
  const backend = new MicrovmBackend({ prestarted: 2 });
  try {
    await backend.check();
  } catch (err) {
    say(`  ${style.yellow("skipped")}: ${err instanceof LuminaError ? err.message : String(err)}`);
    return { ok: true, ran: false };
  }
  const spec = toSandboxSpec(parseConfig({ sandbox: { backend: "microvm", limits: { memory: DEMO_VM_LIMITS.memoryBytes, pids: DEMO_VM_LIMITS.pids } } }).sandbox);
  const made: Sandbox[] = [];
  try {
    const t0 = performance.now();
    made.push(await backend.create(spec));
    say(`  booted a template VM and took its first clone in ${((performance.now() - t0) / 1000).toFixed(1)} s (boot happens once per process)`);
    const t1 = performance.now();
    made.push(...(await Promise.all([backend.create(spec), backend.create(spec)])));
    say(`  two more clones in ${((performance.now() - t1) / 1000).toFixed(1)} s (restore, reseed, confine, warm up: what a pool does ahead of a lease)`);
    for (const sb of made) {
      const r = await out(sb, 'echo "$(hostname): kernel $(uname -r), random $(head -c 6 /dev/urandom | od -An -tx1 | tr -d " \\n")"');
      say(`  ${r.text}`);
    }
    say(style.dim(`  (the host runs kernel ${release()}; every clone has its own hostname and random state)`));
    const shadow = await out(made[0]!, "cat /etc/shadow");
    const usr = await out(made[0]!, "echo x > /usr/pwned");
    const blocked = shadow.code !== 0 && usr.code !== 0;
    say(`  ${blocked ? style.green("blocked") : style.red("ESCAPED")}  read /etc/shadow and write /usr inside the VM`);
    const s = backend.stats();
    say(`  clones served ${s.clonesServed}, cold boots ${s.coldBoots}, restore ms p50 ${s.restoreMs.p50.toFixed(1)}, create ms p50 ${s.createMs.p50.toFixed(0)}`);
    await Promise.allSettled(made.splice(0).map((sb) => sb.destroy()));
    if (!then) return { ok: blocked, ran: true };
    say();
    const agentOk = await then({ create: (sp) => backend.create(sp), close: async () => undefined });
    return { ok: blocked && agentOk, ran: true };
  } finally {
    await Promise.allSettled(made.map((sb) => sb.destroy()));
    await backend.close();
  }
}
