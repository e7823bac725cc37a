/**
 * A guest agent that dies and is restarted by the guest's init (images/guest/lg-init)
 * while the VM and its virtio-serial channel live on: the host sees no close, only
 * the new agent's greeting (SYNC_MAGIC + hello with another pid). The host must
 * treat that as the old agent gone: the running command ends with E_GUEST_LOST
 * (not a hang, not a quiet carry-on with an unconfigured agent), the sandbox
 * refuses further use, and a pool never hands it out again, also when the
 * restart happened while the sandbox sat idle.
 *
 * Two signals tell the host: QEMU's VSERPORT_CHANGE event (the guest closed the
 * agent's port, at the moment the agent died) and, should that event be missed,
 * the new agent's greeting. Each is tested alone.
 *
 * The guest agent runs in-process (the dispatcher unit tests' agent) over a
 * duplex pair; the "VM" is a stand-in that never exits and whose QMP sends only
 * what a test emits.
 */
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { duplexPair, type Duplex } from "node:stream";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { GuestClient } from "../../src/sandbox/agent-client.js";
import { MicrovmSandbox } from "../../src/sandbox/microvm/sandbox.js";
import type { VmExit, VmProcess } from "../../src/sandbox/microvm/vm-process.js";
import type { QmpEvent } from "../../src/sandbox/microvm/qmp.js";
import { AGENT_PORT_DEVICE } from "../../src/sandbox/microvm/qemu-args.js";
import { SandboxPool } from "../../src/sandbox/pool.js";
import { SandboxError } from "../../src/sandbox/errors.js";
import type { Backend, ExecResult, Sandbox } from "../../src/sandbox/types.js";
import type { Agent } from "../../src/guest/dispatcher.js";
import type { Link } from "../../src/guest/link.js";
import { testAgent } from "../helpers/guest-agent.js";
import { testSpec, waitFor } from "../helpers/fake-backend.js";

/** How long the host may take to notice the restart (the greeting is immediate; the loss waits ~1 s for a VM exit). */
const NOTICE_BOUND_MS = 5_000;

const dir = mkdtempSync(join(tmpdir(), "lg-agent-restart-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The guest's end of the channel, as one agent process sees it; a killed agent's link goes dead. */
class PortLink implements Link {
  alive = true;
  constructor(private readonly port: Duplex) {}
  write(buf: Buffer): void {
    if (this.alive) this.port.write(buf);
  }
  readonly backlog = 0;
  drained(): Promise<void> {
    return Promise.resolve();
  }
  discardQueued(): void {}
  close(): void {}
}

/**
 * One guest: a channel whose guest end is served by one agent at a time.
 * `restart()` is what kill -9 + lg-init do: the old agent stops reading and
 * writing at once (its commands live on, orphaned), a new agent process (another
 * pid) opens the same port and greets.
 */
class Guest {
  private readonly port: Duplex;
  readonly host: Duplex;
  private current!: { agent: Agent; link: PortLink; pid: number };
  private nextPid = 4000;
  private readonly dead: Agent[] = [];

  constructor(private readonly name: string) {
    [this.host, this.port] = duplexPair();
    this.port.on("data", (chunk: Buffer) => {
      const { agent, link, pid } = this.current;
      asPid(pid, () => agent.data(link, chunk));
    });
    this.start();
  }

  private start(): void {
    const pid = this.nextPid++;
    this.current = { agent: testAgent(join(dir, `${this.name}-${pid}`), "unit"), link: new PortLink(this.port), pid };
    asPid(pid, () => this.current.agent.open(this.current.link));
  }

  restart(): void {
    this.current.link.alive = false;
    this.dead.push(this.current.agent);
    this.start();
  }

  /** Kill what the agents ran (a real VM takes its orphans with it). */
  stop(): void {
    for (const a of [...this.dead, this.current.agent]) a.stop();
  }
}

/** Run `fn` with process.pid reading `pid`: the agent greets with its process.pid, and a restarted agent is another process. */
function asPid(pid: number, fn: () => void): void {
  const real = Object.getOwnPropertyDescriptor(process, "pid")!;
  Object.defineProperty(process, "pid", { ...real, value: pid });
  try {
    fn();
  } finally {
    Object.defineProperty(process, "pid", real);
  }
}

type FakeVm = VmProcess & { killed: boolean; qmpEvents: EventEmitter };

/** A QEMU stand-in that runs until killed; its QMP sends only the events a test emits on `qmpEvents`. */
function fakeVm(id: string): FakeVm {
  let exit!: (e: VmExit) => void;
  const exited = new Promise<VmExit>((r) => (exit = r));
  const qmpEvents = new EventEmitter();
  const vm = {
    id,
    pid: 0,
    killed: false,
    exited,
    qmpEvents,
    qmp: {
      onEvent: (listener: (e: QmpEvent) => void) => {
        qmpEvents.on("event", listener);
        return () => qmpEvents.off("event", listener);
      },
    },
    get hasExited() {
      return vm.killed;
    },
    kill: async () => {
      vm.killed = true;
      exit({ code: null, signal: "SIGKILL" });
    },
    consoleLog: () => "",
    stderrTail: () => "",
  };
  return vm as unknown as FakeVm;
}

interface Made {
  sandbox: MicrovmSandbox;
  guest: Guest;
  vm: FakeVm;
}

const made: Made[] = [];

/** A micro-VM sandbox over an in-process agent, configured as the backend does it (but unconfined: no bwrap here). */
async function makeSandbox(): Promise<Made> {
  const id = `sb-unit${made.length}`;
  const guest = new Guest(id);
  const agent = await GuestClient.connect(guest.host, { helloTimeoutMs: 2_000 });
  await agent.configure({ confine: "none", uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });
  const vm = fakeVm(id);
  // A heartbeat far beyond the test's bound: only the new agent's greeting can end the command in time.
  const sandbox = new MicrovmSandbox({ id, spec: { ...testSpec(), backend: "microvm" }, vm, agent, heartbeat: { intervalMs: 60_000, timeoutMs: 60_000 } });
  const m = { sandbox, guest, vm };
  made.push(m);
  return m;
}

afterEach(async () => {
  for (const m of made.splice(0)) {
    await m.sandbox.destroy();
    m.guest.stop();
  }
});

async function within<T>(p: Promise<T>, ms: number): Promise<T | "hang"> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<"hang">((r) => (timer = setTimeout(() => r("hang"), ms)))]).finally(() => clearTimeout(timer));
}

describe("micro-VM sandbox: the guest agent restarts (kill -9, then lg-init starts a new one)", () => {
  it("the new agent's greeting ends the running command with E_GUEST_LOST in bounded time, and the sandbox refuses further use", async () => {
    const { sandbox, guest } = await makeSandbox();
    const handle = sandbox.exec(["sh", "-c", "echo started; exec sleep 30"]);
    const out = handle.stdout[Symbol.asyncIterator]();
    expect(Buffer.from((await out.next()).value as Uint8Array).toString()).toBe("started\n");
    expect(sandbox.broken).toBeUndefined();

    const struck = performance.now();
    guest.restart();
    const ended = await within(
      handle.wait().then(
        (r: ExecResult) => r,
        (e: unknown) => e,
      ),
      NOTICE_BOUND_MS,
    );
    expect(ended, "the command outlived its agent").not.toBe("hang");
    expect(ended).toBeInstanceOf(SandboxError);
    expect(ended).toMatchObject({ code: "E_GUEST_LOST", message: expect.stringMatching(/restarted \(pid 4000 became 4001\)/) });
    expect(performance.now() - struck).toBeLessThan(NOTICE_BOUND_MS);
    // Its output streams end too (a reader is not left waiting).
    expect((await within(out.next(), 1_000)) as IteratorResult<Uint8Array>).toMatchObject({ done: true });

    // The new agent was never configured (no confinement, no limits): nothing may run on it.
    expect(sandbox.broken).toMatchObject({ code: "E_GUEST_LOST" });
    expect(sandbox.destroyed).toBe(false);
    expect(() => sandbox.exec(["true"])).toThrow(expect.objectContaining({ code: "E_GUEST_LOST" }));
    await expect(sandbox.files.list("/workspace")).rejects.toMatchObject({ code: "E_GUEST_LOST" });
  });

  it("QEMU reporting the agent's port closed ends the running command at once, before any new agent greets", async () => {
    const { sandbox, vm } = await makeSandbox();
    const handle = sandbox.exec(["sh", "-c", "echo started; exec sleep 30"]);
    expect(Buffer.from((await handle.stdout[Symbol.asyncIterator]().next()).value as Uint8Array).toString()).toBe("started\n");
    // Events for other ports, and the port opening, change nothing.
    vm.qmpEvents.emit("event", { event: "VSERPORT_CHANGE", data: { id: "otherport", open: false }, timestamp: { seconds: 0, microseconds: 0 } });
    vm.qmpEvents.emit("event", { event: "VSERPORT_CHANGE", data: { id: AGENT_PORT_DEVICE, open: true }, timestamp: { seconds: 0, microseconds: 0 } });
    await new Promise((r) => setTimeout(r, 50));
    expect(sandbox.broken).toBeUndefined();

    const struck = performance.now();
    vm.qmpEvents.emit("event", { event: "VSERPORT_CHANGE", data: { id: AGENT_PORT_DEVICE, open: false }, timestamp: { seconds: 0, microseconds: 0 } });
    const ended = await within(
      handle.wait().then(
        (r: ExecResult) => r,
        (e: unknown) => e,
      ),
      NOTICE_BOUND_MS,
    );
    expect(ended).toMatchObject({ code: "E_GUEST_LOST", message: expect.stringMatching(/port was closed in the guest: the agent exited or was killed/) });
    // Only the wait for a QEMU exit (1 s: was it a crash?) stands between the event and the error.
    expect(performance.now() - struck).toBeLessThan(2_000);
    expect(sandbox.broken).toMatchObject({ code: "E_GUEST_LOST" });
  });

  it("a sandbox whose agent restarted while idle in the pool is destroyed, not handed out", async () => {
    const backend: Backend = {
      name: "microvm",
      check: async () => {},
      create: async () => (await makeSandbox()).sandbox,
    };
    const pool = new SandboxPool({ backend, spec: { ...testSpec(), backend: "microvm" }, min: 1, max: 2, maxQueue: 4 });
    try {
      await pool.start();
      expect(made.length).toBe(1);
      const idle = made[0]!;
      idle.guest.restart();
      // The greeting is all there is (no command runs, so no heartbeat): the host must take it in on its own.
      await waitFor(() => idle.sandbox.broken !== undefined, "the idle sandbox is marked broken", NOTICE_BOUND_MS);
      expect(idle.sandbox.broken).toMatchObject({ code: "E_GUEST_LOST", message: expect.stringMatching(/restarted/) });

      const lease = await pool.lease();
      const got: Sandbox = lease.sandbox;
      expect(got).not.toBe(idle.sandbox);
      expect(lease.hit).toBe(false);
      const h = got.exec(["sh", "-c", "echo alive"]);
      const first = await h.stdout[Symbol.asyncIterator]().next();
      expect(Buffer.from(first.value as Uint8Array).toString()).toBe("alive\n");
      expect(await h.wait()).toMatchObject({ exitCode: 0 });
      // The broken one was torn down (its VM killed), not left running beside the pool.
      expect(idle.sandbox.destroyed).toBe(true);
      expect(idle.vm.killed).toBe(true);
      await lease.release();
    } finally {
      await pool.close();
    }
  });
});
