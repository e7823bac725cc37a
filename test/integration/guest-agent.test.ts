// The bundled guest agent (dist/guest/agent.mjs) run on the host, driven through
// GuestClient over its Unix socket: commands, streams, signals, files, reconnects,
// bwrap + seccomp confinement, and the C helper's reseed. Each agent gets a temp
// folder whose workspace/ and tmp/ stand in for the guest's /workspace and /tmp.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { GuestClient } from "../../src/sandbox/agent-client.js";
import { compileProfile } from "../../src/policy/seccomp/index.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import { eventually, pidsWithMarker } from "../helpers/procs.js";

const repo = join(import.meta.dirname, "../..");
const bundle = join(repo, "dist/guest/agent.mjs");

/** Rebuild the bundle when a source it includes is newer (or it is missing). */
function ensureBundle(): void {
  const sources = [
    ...readdirSync(join(repo, "src/guest")).map((f) => join(repo, "src/guest", f)),
    join(repo, "src/sandbox/namespace/bwrap-args.ts"),
    join(repo, "src/sandbox/namespace/host-view.ts"),
    join(repo, "scripts/bundle-guest.mjs"),
  ];
  const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
  if (existsSync(bundle) && statSync(bundle).mtimeMs >= newest) return;
  execFileSync(process.execPath, ["scripts/bundle-guest.mjs"], { cwd: repo, stdio: "inherit" });
}

/** The guest runs Node 20: use the host's Node 20 when it has one, to run the bundle as the guest will. */
function agentNode(): string {
  const r = spawnSync("/usr/bin/node", ["--version"], { encoding: "utf8" });
  return r.status === 0 && r.stdout.startsWith("v20.") ? "/usr/bin/node" : process.execPath;
}

const text = (chunks: Uint8Array[]): string => Buffer.concat(chunks).toString("utf8");

async function drain(it: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const c of it) chunks.push(c);
  return text(chunks);
}

async function run(c: GuestClient, argv: string[], o: { env?: Record<string, string>; cwd?: string; stdin?: string | Uint8Array } = {}) {
  const p = c.exec(argv, { env: { PATH: "/usr/bin:/bin", ...o.env }, cwd: o.cwd ?? "/workspace", stdin: o.stdin !== undefined });
  if (o.stdin !== undefined) {
    await p.write(o.stdin);
    p.closeStdin();
  }
  const [stdout, stderr, exit] = await Promise.all([drain(p.stdout), drain(p.stderr), p.exited]);
  return { stdout, stderr, ...exit };
}

/** Connect to the agent's socket, which exists a moment before it listens (bind, then listen). */
async function connectSocket(path: string): Promise<Socket> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      const s = connect(path);
      await new Promise<void>((resolve, reject) => s.once("connect", resolve).once("error", reject));
      return s;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

interface TestAgent {
  dir: string;
  root: string;
  sock: string;
  proc: ChildProcess;
  connect(): Promise<GuestClient>;
  stop(): Promise<void>;
}

const agents: TestAgent[] = [];

async function startAgent(extra: string[] = []): Promise<TestAgent> {
  const dir = mkdtempSync(join(tmpdir(), "lg-guest-agent-"));
  // The sandbox user (65534) must reach the areas through the temp folder.
  chmodSync(dir, 0o755);
  const root = join(dir, "root");
  mkdirSync(root);
  const sock = join(dir, "agent.sock");
  const proc = spawn(agentNode(), [bundle, "--listen", sock, "--root-dir", root, "--state-dir", join(dir, "state"), "--no-clock", "--no-hostname", ...extra], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  const clients: GuestClient[] = [];
  const agent: TestAgent = {
    dir,
    root,
    sock,
    proc,
    async connect() {
      const c = await GuestClient.connect(await connectSocket(sock), { helloTimeoutMs: 5000 });
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.close();
      if (proc.exitCode === null && proc.signalCode === null) {
        const gone = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 3000);
        await gone;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  agents.push(agent);
  return agent;
}

beforeAll(() => ensureBundle(), 60_000);
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
});

describe("guest agent, unconfined (confine: none)", () => {
  let agent: TestAgent;
  let c: GuestClient;
  beforeAll(async () => {
    agent = await startAgent();
    c = await agent.connect();
    await c.configure({ confine: "none", uid: process.getuid!(), gid: process.getgid!() });
  });

  it("says hello and answers pings", async () => {
    expect(c.hello).toMatchObject({ version: 1, pid: agent.proc.pid, bootId: readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() });
    expect(await c.ping()).toBeGreaterThan(0);
  });

  it("runs a command: exit code, stdout and stderr apart", async () => {
    const r = await run(c, ["sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(r).toMatchObject({ stdout: "out\n", stderr: "err\n", exitCode: 3, signal: null });
  });

  it("ends a command that never read the stdin it was given an open pipe for", async () => {
    const p = c.exec(["sh", "-c", "echo hi"], { env: { PATH: "/usr/bin:/bin" }, cwd: "/workspace", stdin: true });
    expect(await drain(p.stdout)).toBe("hi\n");
    expect((await p.exited).exitCode).toBe(0);
    await expect(p.write("late")).rejects.toMatchObject({ code: "E_SANDBOX_DESTROYED" });
  });

  it("reports a program that does not exist like a shell does", async () => {
    const r = await run(c, ["lg-no-such-program"]);
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toMatch(/cannot run lg-no-such-program/);
  });

  it("streams output as it comes, and a stream can be read on from where a first loop stopped", async () => {
    const p = c.exec(["sh", "-c", "echo first; sleep 0.7; echo second; echo third"], { env: { PATH: "/usr/bin:/bin" }, cwd: "/workspace", stdin: false });
    const started = Date.now();
    const first = await p.stdout[Symbol.asyncIterator]().next();
    expect(Buffer.from(first.value as Uint8Array).toString()).toBe("first\n");
    expect(Date.now() - started).toBeLessThan(600);
    for await (const chunk of p.stdout) {
      expect(Buffer.from(chunk).toString()).toMatch(/^second\n/);
      break; // leaving a loop must not end or drop the stream
    }
    const rest = await drain(p.stdout);
    expect(["third\n", ""]).toContain(rest); // "second\nthird\n" may have come as one chunk
    expect((await p.exited).exitCode).toBe(0);
  });

  it("passes stdin given up front and written interactively", async () => {
    expect((await run(c, ["cat"], { stdin: "given\n" })).stdout).toBe("given\n");
    const p = c.exec(["sh", "-c", "read a; echo got:$a; read b; echo got:$b"], { env: {}, cwd: "/workspace", stdin: true });
    const out = drain(p.stdout);
    await p.write("one\n");
    await p.write(new TextEncoder().encode("two\n"));
    p.closeStdin();
    expect(await out).toBe("got:one\ngot:two\n");
    await expect(p.write("late")).rejects.toMatchObject({ code: "E_SANDBOX_DESTROYED" });
    // More than one frame's worth: written in pieces, each answered once the pipe took it.
    const big = randomBytes(5 * 1024 * 1024 + 17);
    const sum = await run(c, ["sha256sum"], { stdin: big });
    expect(sum.stdout.split(" ")[0]).toBe(createHash("sha256").update(big).digest("hex"));
  });

  it("sets env and cwd and inherits nothing from the agent's environment", async () => {
    const r = await run(c, ["sh", "-c", 'echo "$GREETING|$HOME|$(pwd)"'], { env: { GREETING: "hi" }, cwd: "/tmp" });
    expect(r.stdout).toBe(`hi||${join(agent.root, "tmp")}\n`);
  });

  it("reports deaths by signal and delivers kill() to the command", async () => {
    const self = await run(c, ["sh", "-c", "kill -9 $$"]);
    expect(self).toMatchObject({ exitCode: null, signal: "SIGKILL" });
    const p = c.exec(["sh", "-c", "echo ready; exec sleep 30"], { env: { PATH: "/usr/bin:/bin" }, cwd: "/workspace", stdin: false });
    await p.stdout[Symbol.asyncIterator]().next();
    p.kill("SIGTERM");
    expect(await p.exited).toMatchObject({ exitCode: null, signal: "SIGTERM" });
  });

  it("kills the whole process tree, and what a command leaves behind dies with it", async () => {
    const marker = `lgmark-agent-tree-${process.pid}-${Date.now()}`;
    const p = c.exec(["sh", "-c", `(sleep 300; echo ${marker}) & (sh -c 'sleep 300; echo ${marker}' &) ; echo up; sleep 300 # ${marker}`], { env: { PATH: "/usr/bin:/bin" }, cwd: "/workspace", stdin: false });
    await p.stdout[Symbol.asyncIterator]().next();
    expect(await eventually(() => pidsWithMarker(marker).length >= 3)).toBe(true);
    expect((await c.processes()).filter((x) => x.cmdline.includes(marker)).length).toBeGreaterThanOrEqual(3);
    p.kill("SIGKILL");
    expect((await p.exited).signal).toBe("SIGKILL");
    expect(await eventually(() => pidsWithMarker(marker).length === 0)).toBe(true);

    const leaver = `lgmark-agent-leftover-${process.pid}-${Date.now()}`;
    const r = await run(c, ["sh", "-c", "(sleep 300; true) & echo bye", leaver]);
    expect(r.stdout).toBe("bye\n");
    expect(await eventually(() => pidsWithMarker(leaver).length === 0)).toBe(true);
  });

  it("pauses a command's output while the host does not read, instead of buffering it", async () => {
    // A raw connection that asks for 200 MiB of output and then does not read.
    const { FrameDecoder, SYNC_MAGIC, encodeFrame } = await import("../../src/guest/protocol.js");
    const s = await connectSocket(agent.sock);
    s.write(SYNC_MAGIC);
    s.write(encodeFrame({ type: "hello", id: 1, version: 1 }));
    s.write(encodeFrame({ type: "exec", id: 2, execId: "flood", argv: ["head", "-c", String(200 * 1024 * 1024), "/dev/zero"], env: { PATH: "/usr/bin:/bin" }, cwd: "/workspace", stdin: false }));
    s.pause();
    await new Promise((r) => setTimeout(r, 1500));
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${agent.proc.pid}/status`, "utf8"))![1]);
    expect(rssKb).toBeLessThan(150 * 1024);
    // Now read it all: nothing was lost while paused.
    const d = new FrameDecoder({ awaitSync: true });
    let bytes = 0;
    const done = new Promise<Record<string, unknown>>((resolve) => {
      s.on("data", (chunk: Buffer) => {
        for (const t of d.push(chunk)) {
          if (t.kind !== "frame") continue;
          if (t.frame.header.type === "stdout") bytes += t.frame.body.length;
          if (t.frame.header.type === "exit") resolve(t.frame.header);
        }
      });
    });
    s.resume();
    expect(await done).toMatchObject({ exitCode: 0 });
    expect(bytes).toBe(200 * 1024 * 1024);
    s.destroy();
    // The socket was the newest connection; our client must reconnect for the next tests.
    c = await agent.connect();
  }, 60_000);

  it("reads, writes, lists and removes files, binary-safe and in pieces when large", async () => {
    const binary = new Uint8Array([0, 1, 2, 255, 10, 13, 0]);
    await c.writeFile("/workspace/data/blob.bin", binary, 1024);
    expect(Array.from(await c.readFile("/workspace/data/blob.bin", 1024))).toEqual(Array.from(binary));
    expect(readFileSync(join(agent.root, "workspace/data/blob.bin")).equals(Buffer.from(binary))).toBe(true);
    const big = randomBytes(9 * 1024 * 1024 + 3); // more than two 4 MiB frames
    await c.writeFile("/tmp/big.bin", big, 16 * 1024 * 1024);
    expect(Buffer.from(await c.readFile("/tmp/big.bin", 16 * 1024 * 1024)).equals(big)).toBe(true);
    await c.writeFile("/workspace/b.txt", new TextEncoder().encode("hello"), 100);
    expect(await c.list("/workspace")).toEqual([
      { name: "b.txt", type: "file", size: 5 },
      { name: "data", type: "dir", size: expect.any(Number) },
    ]);
    expect(await c.list("/workspace/data")).toEqual([{ name: "blob.bin", type: "file", size: 7 }]);
    await c.remove("/workspace/b.txt", false);
    await expect(c.readFile("/workspace/b.txt", 100)).rejects.toMatchObject({ code: "E_FILE_NOT_FOUND" });
    await expect(c.remove("/workspace/b.txt", false)).rejects.toMatchObject({ code: "E_FILE_NOT_FOUND" });
    await expect(c.list("/workspace/nope")).rejects.toMatchObject({ code: "E_FILE_NOT_FOUND" });
    await expect(c.remove("/workspace/data", false)).rejects.toMatchObject({ code: "E_FILE_IO" });
    await c.remove("/workspace/data", true);
    await c.remove("/tmp/big.bin", false);
    expect(await c.list("/workspace")).toEqual([]);
  });

  it("enforces the size limit both ways", async () => {
    await expect(c.writeFile("/workspace/big", new Uint8Array(2048), 1024)).rejects.toMatchObject({ code: "E_FILE_TOO_LARGE" });
    await expect(c.writeFile("/workspace/big", new Uint8Array(5 * 1024 * 1024), 4 * 1024 * 1024)).rejects.toMatchObject({ code: "E_FILE_TOO_LARGE" });
    expect(existsSync(join(agent.root, "workspace/big"))).toBe(false);
    writeFileSync(join(agent.root, "workspace/big"), Buffer.alloc(4096));
    await expect(c.readFile("/workspace/big", 1024)).rejects.toMatchObject({ code: "E_FILE_TOO_LARGE" });
    await c.remove("/workspace/big", false);
  });

  it("refuses paths outside the writable areas, also through symlinks, and never hangs on a FIFO", async () => {
    const ws = join(agent.root, "workspace");
    symlinkSync("/etc", join(ws, "esc"));
    symlinkSync("/etc/hostname", join(ws, "esc-file"));
    mkdirSync(join(ws, "in"));
    writeFileSync(join(ws, "in/ok.txt"), "inside");
    symlinkSync(join(ws, "in/ok.txt"), join(ws, "link-in"));
    for (const p of ["/etc/passwd", "/workspace/../etc/passwd", "relative.txt", "/workspace/esc/passwd", "/workspace/esc-file"]) {
      await expect(c.readFile(p, 1 << 20), p).rejects.toMatchObject({ code: "E_FILE_PATH" });
    }
    await expect(c.writeFile("/workspace/esc/lg-should-not-exist", new Uint8Array(1), 10)).rejects.toMatchObject({ code: "E_FILE_PATH" });
    await expect(c.writeFile("/workspace/esc-file", new Uint8Array(1), 10)).rejects.toMatchObject({ code: "E_FILE_PATH" });
    expect(existsSync("/etc/lg-should-not-exist")).toBe(false);
    await expect(c.list("/workspace/esc")).rejects.toMatchObject({ code: "E_FILE_PATH" });
    await expect(c.remove("/workspace/esc/hostname", false)).rejects.toMatchObject({ code: "E_FILE_PATH" });
    await expect(c.remove("/workspace", true)).rejects.toMatchObject({ code: "E_FILE_PATH" });
    // A link that stays inside works; removing a link removes only the link.
    expect(Buffer.from(await c.readFile("/workspace/link-in", 100)).toString()).toBe("inside");
    expect((await c.list("/workspace")).find((e) => e.name === "esc")).toMatchObject({ type: "symlink" });
    await c.remove("/workspace/esc", false);
    expect(existsSync("/etc/hostname")).toBe(true);
    execFileSync("mkfifo", [join(ws, "fifo")]);
    await expect(c.readFile("/workspace/fifo", 100)).rejects.toMatchObject({ code: "E_FILE_IO" });
    await expect(c.writeFile("/workspace/fifo", new Uint8Array(1), 100)).rejects.toMatchObject({ code: "E_FILE_IO" });
    await c.remove("/workspace", true).catch(() => {});
    for (const e of await c.list("/workspace")) await c.remove(`/workspace/${e.name}`, true);
  });

  it("lists the guest's processes", async () => {
    const procs = await c.processes();
    expect(procs.find((p) => p.pid === agent.proc.pid)?.cmdline).toContain("agent.mjs");
  });

  it("serves a new host after the old one left, greets it, and kills the old host's commands", async () => {
    const marker = `lgmark-agent-reconnect-${process.pid}-${Date.now()}`;
    const p = c.exec(["sh", "-c", `echo up; sleep 300 # ${marker}`], { env: { PATH: "/usr/bin:/bin" }, cwd: "/workspace", stdin: false });
    await p.stdout[Symbol.asyncIterator]().next();
    const before = c.hello;
    c.close();
    await expect(p.exited).rejects.toMatchObject({ code: "E_GUEST_LOST" });
    const c2 = await agent.connect();
    expect(c2.hello).toEqual(before);
    expect(await eventually(() => pidsWithMarker(marker).length === 0)).toBe(true);
    expect((await run(c2, ["echo", "again"])).stdout).toBe("again\n");
    // A second host connecting takes over from the first.
    const c3 = await agent.connect();
    expect(await c3.ping()).toBeGreaterThan(0);
    expect((await c2.lost).code).toBe("E_GUEST_LOST");
    c = c3;
  });

  it("refuses reseed without a helper, with a message that says why", async () => {
    await expect(c.reseed({ entropy: randomBytes(64), timeMs: Date.now(), hostname: "clone-1" })).rejects.toMatchObject({ code: "E_SANDBOX_START", message: expect.stringMatching(/helper/) });
    await expect(c.reseed({ entropy: randomBytes(64), timeMs: Date.now(), hostname: "bad host!" })).rejects.toMatchObject({ code: "E_EXEC_INVALID" });
  });

  it("measures ping and exec round trips", async () => {
    const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const pings: number[] = [];
    for (let i = 0; i < 200; i++) pings.push(await c.ping());
    const execs: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t = performance.now();
      await run(c, ["true"]);
      execs.push(performance.now() - t);
    }
    console.log(`[measure] guest agent on the host (unix socket): ping p50 ${median(pings).toFixed(3)} ms; exec true (confine none) p50 ${median(execs).toFixed(1)} ms`);
    expect(median(pings)).toBeLessThan(50);
  });
});

const bwrapSkip = namespaceSkipReason();
announceSkip("guest agent with bwrap confinement", bwrapSkip);

describe.skipIf(bwrapSkip !== undefined)("guest agent, confined (confine: bwrap)", () => {
  let agent: TestAgent;
  let c: GuestClient;
  beforeAll(async () => {
    agent = await startAgent();
    c = await agent.connect();
    await c.configure({ confine: "bwrap", uid: 65534, gid: 65534, seccomp: compileProfile({ level: "default", mode: "enforce" }) });
  });

  it("runs commands as the sandbox user with no capabilities, no_new_privs and our seccomp filter", async () => {
    const r = await run(c, ["sh", "-c", "id -u; id -g; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; hostname; pwd"]);
    expect(r.stderr).toBe("");
    const lines = r.stdout.trim().split("\n");
    expect(lines.slice(0, 2)).toEqual(["65534", "65534"]);
    expect(r.stdout).toMatch(/CapEff:\s+0000000000000000/);
    expect(r.stdout).toMatch(/CapBnd:\s+0000000000000000/);
    expect(r.stdout).toMatch(/NoNewPrivs:\s+1/);
    expect(r.stdout).toMatch(/Seccomp:\s+2/);
    expect(lines.at(-1)).toBe("/workspace");
  });

  it("shows /workspace and /tmp writable, the system read-only, and files shared with the files API", async () => {
    await c.writeFile("/workspace/from-host.txt", new TextEncoder().encode("hi\n"), 100);
    const r = await run(c, ["sh", "-c", "cat /workspace/from-host.txt; stat -c %u /workspace/from-host.txt; echo made > /workspace/made.txt; echo t > /tmp/t; touch /usr/lg-x 2>&1 || echo usr-ro; ls /root 2>&1 || echo no-root"]);
    expect(r.stdout).toMatch(/^hi\n65534\n/);
    expect(r.stdout).toMatch(/usr-ro/);
    expect(Buffer.from(await c.readFile("/workspace/made.txt", 100)).toString()).toBe("made\n");
    expect(Buffer.from(await c.readFile("/tmp/t", 100)).toString()).toBe("t\n");
    expect(statSync(join(agent.root, "workspace/made.txt")).uid).toBe(65534);
    expect(existsSync("/usr/lg-x")).toBe(false);
  });

  it("blocks what the seccomp floor blocks", async () => {
    const r = await run(c, ["sh", "-c", "unshare -U true 2>&1; echo rc=$?"]);
    expect(r.stdout).toMatch(/rc=[1-9]/);
  });

  it("delivers signals inside the pid namespace and kills the whole tree", async () => {
    const p = c.exec(["sh", "-c", "echo ready; exec sleep 30"], { env: {}, cwd: "/workspace", stdin: false });
    await p.stdout[Symbol.asyncIterator]().next();
    p.kill("SIGTERM");
    expect(await p.exited).toMatchObject({ exitCode: null, signal: "SIGTERM" });

    const marker = `lgmark-agent-bwrap-${process.pid}-${Date.now()}`;
    const q = c.exec(["sh", "-c", `(sleep 300; echo ${marker}) & echo up; sleep 300 # ${marker}`], { env: {}, cwd: "/workspace", stdin: false });
    await q.stdout[Symbol.asyncIterator]().next();
    expect(await eventually(() => pidsWithMarker(marker).length >= 2)).toBe(true);
    q.kill("SIGKILL");
    expect((await q.exited).signal).toBe("SIGKILL");
    expect(await eventually(() => pidsWithMarker(marker).length === 0)).toBe(true);
  });

  it("refuses to confine commands as root", async () => {
    await expect(c.configure({ confine: "bwrap", uid: 0, gid: 0 })).rejects.toMatchObject({ code: "E_EXEC_INVALID" });
  });

  it("measures exec of true under bwrap", async () => {
    const execs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      const r = await run(c, ["true"]);
      expect(r.exitCode).toBe(0);
      execs.push(performance.now() - t);
    }
    execs.sort((a, b) => a - b);
    console.log(`[measure] guest agent on the host: exec true (confine bwrap + seccomp) p50 ${execs[10]!.toFixed(1)} ms`);
  });
});

const gccSkip = existsSync("/usr/bin/gcc") ? undefined : "gcc is not installed (apt-get install gcc libc6-dev)";
announceSkip("guest helper (lg-guest-helper)", gccSkip);

describe.skipIf(gccSkip !== undefined)("lg-guest-helper", () => {
  let dir: string;
  let helper: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "lg-guest-helper-"));
    helper = join(dir, "lg-guest-helper");
    execFileSync("gcc", ["-O2", "-Wall", "-Werror", "-o", helper, join(repo, "images/guest/lg-guest-helper.c")], { stdio: "inherit" });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reseed adds entropy and reseeds the kernel RNG (as root); refuses too little entropy", () => {
    if (process.getuid?.() !== 0) {
      announceSkip("lg-guest-helper reseed", "RNDADDENTROPY needs root");
      return;
    }
    const ok = spawnSync(helper, ["reseed"], { input: randomBytes(64) });
    expect(ok.stderr.toString()).toBe("");
    expect(ok.status).toBe(0);
    const few = spawnSync(helper, ["reseed"], { input: randomBytes(4) });
    expect(few.status).toBe(1);
    expect(few.stderr.toString()).toMatch(/at least 16 bytes/);
    expect(spawnSync(helper, ["settime", "soon"]).status).toBe(2);
    expect(spawnSync(helper, []).status).toBe(2);
  });

  it("is what the agent runs for reseed (clock and hostname left alone on a host)", async () => {
    if (process.getuid?.() !== 0) return;
    const agent = await startAgent(["--helper", helper]);
    const c = await agent.connect();
    // The host's own time and name: should --no-clock/--no-hostname ever break, nothing changes.
    const hostname = readFileSync("/proc/sys/kernel/hostname", "utf8").trim();
    await c.reseed({ entropy: randomBytes(64), timeMs: Date.now(), hostname: /^[A-Za-z0-9.-]{1,64}$/.test(hostname) ? hostname : "localhost" });
    await agent.stop();
  });
});
