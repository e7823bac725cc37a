/**
 * `luminaguard demo`: a short scripted tour that shows the sandbox doing real
 * work, refusing real escapes, and the warm pool's numbers. Every line printed
 * comes from a real sandbox run; nothing is canned.
 */
import { createServer } from "node:net";
import { Command } from "commander";
import { NamespaceBackend } from "../sandbox/namespace/backend.js";
import { SandboxPool } from "../sandbox/pool.js";
import { collect } from "../sandbox/collect.js";
import { parseConfig } from "../config/load.js";
import { toSandboxSpec } from "../config/schema.js";
import { LuminaError } from "../errors.js";
import type { Sandbox } from "../sandbox/types.js";
import { style } from "./style.js";
import { networkDemo } from "./demo-network.js";
import { DEMO_VM_LIMITS, microvmDemo } from "./demo-microvm.js";
import { agentDemo } from "./demo-agent.js";

const say = (line = ""): void => void process.stdout.write(`${line}\n`);

async function run(sb: Sandbox, argv: string[], timeoutMs = 20_000): Promise<{ out: string; code: number | null; error?: LuminaError }> {
  try {
    const r = await collect(sb.exec(argv, { timeoutMs }));
    return { out: (r.stdout.toString() + r.stderr.toString()).trim(), code: r.result.exitCode };
  } catch (err) {
    if (err instanceof LuminaError) return { out: "", code: null, error: err };
    throw err;
  }
}

/** One escape attempt: passes when the command fails. */
async function attempt(sb: Sandbox, label: string, argv: string[]): Promise<boolean> {
  const r = await run(sb, argv);
  const blocked = r.code !== 0;
  const why = (r.out.split("\n").find((l) => l.trim()) ?? "").trim().slice(0, 70);
  say(`  ${blocked ? style.green("blocked") : style.red("ESCAPED")}  ${label.padEnd(34)} ${style.dim(why)}`);
  return blocked;
}

async function demo(): Promise<number> {
  const backend = new NamespaceBackend();
  await backend.check();
  const spec = toSandboxSpec(parseConfig({ sandbox: { limits: { memory: "128M", pids: 64 }, seccomp: { level: "default" } } }).sandbox);
  const pool = new SandboxPool({ backend, spec, min: 2, max: 4, maxQueue: 8 });
  let escapes = 0;
  try {
    say(style.bold("1. A warm pool of disposable sandboxes"));
    await pool.start();
    const lease = await pool.lease();
    say(`  leased ${lease.sandbox.id} in ${lease.waitedMs.toFixed(2)} ms (${lease.hit ? "warm hit" : "cold miss"})`);
    const who = await run(lease.sandbox, ["sh", "-c", "echo \"user: $(id -un) ($(id -u)), host: $(hostname), processes visible: $(ls /proc | grep -c '^[0-9]')\""]);
    say(`  ${who.out}`);
    const py = await run(lease.sandbox, ["python3", "-c", "import platform, hashlib; print('python', platform.python_version(), hashlib.sha256(b'lumina').hexdigest()[:16])"]);
    say(`  ${py.out || style.dim("(python3 not installed on this host)")}`);
    await lease.sandbox.files.write("notes/hello.txt", "written through Sandbox.files\n");
    const cat = await run(lease.sandbox, ["cat", "/workspace/notes/hello.txt"]);
    say(`  file round-trip: ${cat.out}`);
    await lease.release();

    say();
    say(style.bold("2. Escape attempts (each must be blocked)"));
    const server = createServer((c) => c.end("host secret\n"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const esc = await pool.lease();
    const sb = esc.sandbox;
    const checks: [string, string[]][] = [
      ["read /etc/shadow", ["cat", "/etc/shadow"]],
      ["list /root", ["ls", "/root"]],
      ["write into /usr", ["sh", "-c", "echo x > /usr/pwned"]],
      ["new user namespace", ["unshare", "-U", "true"]],
      ["mount a filesystem", ["mount", "-t", "tmpfs", "none", "/tmp"]],
      ["ptrace (seccomp)", ["python3", "-c", "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nif libc.syscall(101, 0, 0, 0, 0) != 0: sys.exit('ptrace: ' + os.strerror(ctypes.get_errno()))"]],
      [`reach host 127.0.0.1:${port}`, ["python3", "-c", `import socket, sys\ntry: socket.create_connection(("127.0.0.1", ${port}), 2)\nexcept OSError as e: sys.exit(f"connect: {e.strerror}")`]],
    ];
    for (const [label, argv] of checks) if (!(await attempt(sb, label, argv))) escapes++;
    server.close();
    await esc.release();

    say();
    say(style.bold("3. Limits end runaway work with a clear error, for that sandbox only"));
    const lim = await pool.lease();
    const oom = await run(lim.sandbox, ["python3", "-c", "b = bytearray(400 * 1024 * 1024); print('allocated')"]);
    say(`  400 MiB in a 128 MiB sandbox -> ${oom.error ? `${style.yellow(oom.error.code)}: ${oom.error.message.split(".")[0]}` : `exit ${oom.code}`}`);
    const bomb = await run(lim.sandbox, ["sh", "-c", "i=0; while [ $i -lt 200 ]; do sleep 5 & i=$((i+1)); done; wait"], 10_000);
    say(`  200 background processes, pids limit 64 -> ${bomb.error ? `${style.yellow(bomb.error.code)}: ${bomb.error.message.split(";")[0]}` : `exit ${bomb.code}`}`);
    const slow = await run(lim.sandbox, ["sleep", "60"], 500);
    say(`  sleep 60 with a 500 ms timeout -> ${slow.error ? style.yellow(slow.error.code) : `exit ${slow.code}`}`);
    await lim.release();

    say();
    say(style.bold("4. Pool statistics"));
    const leases = await Promise.all(Array.from({ length: 4 }, () => pool.lease()));
    await Promise.all(leases.map((l) => run(l.sandbox, ["true"])));
    await Promise.all(leases.map((l) => l.release()));
    // Let the pool refill so the snapshot shows it warm again.
    for (let i = 0; i < 100 && pool.stats().idle < 2; i++) await new Promise((r) => setTimeout(r, 20));
    const s = pool.stats();
    say(`  leases: ${s.hits} warm hits, ${s.misses} misses; sandboxes spawned ${s.spawned}, destroyed ${s.destroyed}`);
    say(`  spawn ms p50 ${s.spawnMs.p50.toFixed(1)} / p95 ${s.spawnMs.p95.toFixed(1)}; lease wait ms p50 ${s.leaseWaitMs.p50.toFixed(2)} / p95 ${s.leaseWaitMs.p95.toFixed(2)}`);
    say(`  now: active ${s.active}, idle ${s.idle}, queued ${s.queued}`);
  } finally {
    await pool.close();
  }
  say();
  if (!(await networkDemo())) escapes++;
  say();
  // The agent part runs on the best backend here: in micro-VMs cloned from the VM part's template, else in namespaces.
  const vm = await microvmDemo((source) => agentDemo(source, "microvm", DEMO_VM_LIMITS));
  if (!vm.ok) escapes++;
  if (!vm.ran) {
    say();
    const ns = new NamespaceBackend();
    try {
      if (!(await agentDemo({ create: (spec) => ns.create(spec), close: async () => undefined }, "namespace"))) escapes++;
    } finally {
      await ns.close();
    }
  }
  say();
  say(escapes === 0 ? style.green("Every escape attempt was blocked, the firewall let through exactly what its policy allows, and the agent's edit ran only with a decision.") : style.red(`${escapes} check(s) went the wrong way!`));
  return escapes === 0 ? 0 : 1;
}

/** The `demo` command. */
export function demoCommand(): Command {
  return new Command("demo")
    .description("A short scripted tour: sandboxes from a warm pool run real commands, escape attempts are blocked, limits stop runaway work, pool stats are printed, the firewall lets through only what a policy allows, micro-VMs are cloned from a snapshot, and a (replayed) agent edits a file through a sandboxed MCP server behind the Approval Cliff.")
    .action(async () => {
      process.exitCode = await demo();
    });
}
