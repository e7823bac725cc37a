/**
 * Chaos: kill -9 (or freeze) the runtime of a sandbox in the middle of a call,
 * through the warm pool, on each backend: namespace (bwrap, networked, so its
 * netns/veth/nft chain are checked too), gVisor (runsc-sandbox, the sentry)
 * and micro-VM (QEMU killed; QEMU frozen with SIGSTOP: the guest agent goes
 * silent; the guest agent itself killed -9 inside the VM, which the guest's
 * init restarts). The exec ends within a bound (a hang check, not a speed
 * check), the pool hands out a working replacement, and after close nothing
 * of ours is left. Then, a micro-VM killed while it waits idle in the pool is
 * not handed out. Last, the runtime under an MCP server killed during a tool
 * call: the call fails with E_MCP_SERVER_CRASHED, the audit log has the
 * failed call, and the server comes back in a fresh sandbox.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NamespaceBackend } from "../../src/sandbox/namespace/backend.js";
import { GvisorBackend } from "../../src/sandbox/gvisor/backend.js";
import { MicrovmBackend } from "../../src/sandbox/microvm/backend.js";
import { SandboxPool } from "../../src/sandbox/pool.js";
import { collect } from "../../src/sandbox/collect.js";
import { parseConfig } from "../../src/config/load.js";
import { toSandboxSpec } from "../../src/config/schema.js";
import { runtimeDir } from "../../src/config/paths.js";
import type { Backend, ExecResult, Sandbox, SandboxSpec } from "../../src/sandbox/types.js";
import type { GuestClient } from "../../src/sandbox/agent-client.js";
import { announceSkip, gvisorSkipReason, microvmSkipReason, namespaceSkipReason } from "../helpers/capabilities.js";
import { microvmLeftovers, namespaceLeftovers } from "../helpers/leftovers.js";
import { foldersNamed, networkObjects, sandboxLeaks } from "./leaks.js";
import { McpHub } from "../../src/mcp/hub.js";
import { RecordingSandboxes, stageMcpServers, type StagedServers } from "../helpers/mcp-servers.js";
import { MemoryAudit, ScriptedApprover, outcome, text } from "../helpers/mcp-hub.js";
import { eventually } from "../helpers/procs.js";

/** How long a killed call may take to end before we call it a hang. */
const HANG_BOUND_MS = 30_000;

/** Host pids whose argv holds `id` as a whole argument, and whose argv[0] passes `program`. */
function pidsOf(id: string, program: (argv0: string, comm: string) => boolean): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, "latin1").split("\0");
      const comm = readFileSync(`/proc/${name}/comm`, "latin1").trim();
      if (argv.some((a) => a === id || a.includes(`${id},`) || a.endsWith(`/${id}`)) && program(argv[0] ?? "", comm)) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Start a long command; `started` resolves once it printed its first line (so it runs for sure). */
function longCall(sb: Sandbox): { started: Promise<boolean>; ended: Promise<ExecResult | Error> } {
  const handle = sb.exec(["sh", "-c", "echo started; exec sleep 300"]);
  let seen: (v: boolean) => void = () => {};
  const started = new Promise<boolean>((r) => (seen = r));
  // Both streams are read to the end (a full pipe would block the command); stdout tells when it runs.
  const drain = async (stream: AsyncIterable<Uint8Array>, watch: boolean): Promise<void> => {
    let text = "";
    try {
      for await (const chunk of stream) {
        text += Buffer.from(chunk).toString();
        if (watch && text.includes("started\n")) seen(true);
      }
    } catch {
      // a stream torn by the crash: wait() says what happened
    }
  };
  void drain(handle.stdout, true).finally(() => seen(false));
  void drain(handle.stderr, false);
  const ended = handle.wait().then(
    (r) => r,
    (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
  );
  return { started, ended };
}

/** The firewall's short id of a networked sandbox (lg-<short> is its netns), if it has a network. */
function shortOf(sb: Sandbox): string | undefined {
  const path = (sb.network as unknown as { attachment?: { netnsPath: string } } | undefined)?.attachment?.netnsPath ?? "";
  return /lg-([0-9a-f]{8})$/.exec(path)?.[1];
}

/** `ended`, or a Hang error after HANG_BOUND_MS. */
async function bounded<T>(p: Promise<T>): Promise<T | "hang"> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<"hang">((r) => (timer = setTimeout(() => r("hang"), HANG_BOUND_MS)));
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

interface Case {
  name: string;
  skip: string | undefined;
  backend: () => Backend;
  spec: () => SandboxSpec;
  /** One fault per round, each on a fresh lease: set up (optional), hurt the runtime (returns the pids hit), then check the ending. */
  rounds: { prepare?(sb: Sandbox): Promise<void>; strike(sb: Sandbox): number[]; expectEnding(ended: ExecResult | Error): void }[];
  leftovers(ids: string[]): Promise<string[]>;
  /** Host folders a sandbox lives in (checked gone after close). */
  folders(id: string): string[];
}

const killAll = (pids: number[], signal: NodeJS.Signals): number[] => {
  for (const p of pids) process.kill(p, signal);
  return pids;
};

/** QEMU processes frozen by a round, thawed before the pool closes. */
let frozen: number[] = [];

/** The host's client of a micro-VM sandbox's guest agent (the one channel into the guest). */
const agentOf = (sb: Sandbox): GuestClient => (sb as unknown as { parts: { agent: GuestClient } }).parts.agent;

/**
 * kill -9 the guest agent from inside its VM. Commands run as uid 65534 under
 * bwrap and cannot signal the agent (root), so the host first reconfigures
 * this sandbox the way the protocol allows a host to (`configure` with
 * confine "none", uid 0: the host owns the guest), and the command then runs
 * as the guest's root. Reconfiguring stops the confined spawner and whatever
 * it started, so it happens before the long call, which then runs unconfined.
 */
const unconfine = (sb: Sandbox): Promise<void> => agentOf(sb).configure({ confine: "none", uid: 0, gid: 0 });

function killGuestAgent(sb: Sandbox): number[] {
  const pid = agentOf(sb).hello.pid;
  // This command dies with the agent (its exit can no longer be reported): its ending is not the test's.
  void collect(sb.exec(["kill", "-9", String(pid)])).catch(() => {});
  return [pid];
}

/** gVisor's sentry of sandbox `id`: `runsc ... boot ... <id>` (its gofer and `runsc exec` calls name the id too). */
const sentryPids = (id: string): number[] => pidsOf(id, (_a, comm) => comm === "runsc-sandbox" || comm === "exe").filter((p) => readFileSync(`/proc/${p}/cmdline`, "latin1").split("\0").includes("boot"));
/** The QEMU of micro-VM sandbox `id`. */
const qemuPids = (id: string): number[] => pidsOf(id, (a) => a.includes("qemu-system"));

const nsSkip = namespaceSkipReason();
const gvSkip = nsSkip ?? gvisorSkipReason();
const vmSkip = microvmSkipReason();

/** Per backend: why it may be skipped, and where its leftovers would be (what the leak checks read). */
const NAMESPACE = { skip: nsSkip, leftovers: namespaceLeftovers, folders: (id: string) => foldersNamed(join(runtimeDir(), "sandboxes"), (n) => n === id, 1) };
const GVISOR = { skip: gvSkip, leftovers: namespaceLeftovers, folders: (id: string) => foldersNamed(join(runtimeDir(), "gvisor"), (n) => n === id, 2) };
const MICROVM = { skip: vmSkip, leftovers: microvmLeftovers, folders: (id: string) => foldersNamed(join(runtimeDir(), "vms"), (n) => n === id, 1) };
const gvisorSpec = (): SandboxSpec => toSandboxSpec(parseConfig({ sandbox: { backend: "gvisor" } }).sandbox);
const microvmSpec = (): SandboxSpec => toSandboxSpec(parseConfig({ sandbox: { backend: "microvm", limits: { memory: "160M", pids: 64 } } }).sandbox);

const CASES: Case[] = [
  {
    name: "namespace (networked): SIGKILL to the sandbox's bwrap",
    ...NAMESPACE,
    backend: () => new NamespaceBackend(),
    spec: () => toSandboxSpec(parseConfig({ sandbox: { network: { allow: [{ cidr: "192.0.2.1/32", ports: [80] }] } } }).sandbox),
    rounds: [
      {
        strike: (sb) => killAll(pidsOf(sb.id, (a) => a.endsWith("bwrap")), "SIGKILL"),
        // FINDING: the namespace backend has no runtime of its own to lose; a killed bwrap reads as the
        // command ending by SIGKILL (no typed error). It must end, and say SIGKILL, never hang.
        expectEnding: (ended) => {
          expect(ended).not.toBeInstanceOf(Error);
          expect(ended).toMatchObject({ exitCode: null, signal: "SIGKILL" });
        },
      },
    ],
  },
  {
    name: "gVisor: SIGKILL to the sandbox's runsc-sandbox (sentry)",
    ...GVISOR,
    backend: () => new GvisorBackend(),
    spec: gvisorSpec,
    rounds: [
      {
        strike: (sb) => killAll(sentryPids(sb.id), "SIGKILL"),
        expectEnding: (ended) => expect(ended).toMatchObject({ code: "E_SANDBOX_CRASHED" }),
      },
    ],
  },
  {
    name: "micro-VM: SIGKILL to QEMU, then QEMU frozen (SIGSTOP) so the guest agent goes silent",
    ...MICROVM,
    backend: () => new MicrovmBackend({ prestarted: 0, heartbeat: { intervalMs: 300, timeoutMs: 2_000 } }),
    spec: microvmSpec,
    rounds: [
      {
        strike: (sb) => killAll(qemuPids(sb.id), "SIGKILL"),
        expectEnding: (ended) => expect(ended).toMatchObject({ code: "E_VM_CRASHED" }),
      },
      {
        // The guest agent runs as the guest's root and our execs do not: freeze QEMU instead, so the agent goes silent.
        strike: (sb) => (frozen = killAll(qemuPids(sb.id), "SIGSTOP")),
        expectEnding: (ended) => expect(ended).toMatchObject({ code: "E_GUEST_LOST" }),
      },
    ],
  },
  {
    name: "micro-VM: SIGKILL to the guest agent inside the VM (the guest's init restarts it)",
    ...MICROVM,
    // The default heartbeat (a ping every 5 s, lost after 20 s), on purpose: the restarted agent answers
    // pings, so the call must end from what the host learns of the agent's death itself.
    backend: () => new MicrovmBackend({ prestarted: 0 }),
    spec: microvmSpec,
    rounds: [
      {
        prepare: unconfine,
        strike: killGuestAgent,
        // QEMU reports the guest closing the agent's port as the agent dies (VSERPORT_CHANGE), seconds before
        // the guest's init has a new agent greeting (which would end the call too: the unit tests check both).
        expectEnding: (ended) => expect(ended).toMatchObject({ code: "E_GUEST_LOST", message: expect.stringMatching(/port was closed in the guest: the agent exited or was killed/) }),
      },
    ],
  },
];

for (const c of CASES) {
  announceSkip(`chaos kill: ${c.name}`, c.skip);
  describe.skipIf(c.skip !== undefined)(`kill mid-call through the pool: ${c.name}`, () => {
    it("the call ends with its error in bounded time, the pool replaces the sandbox, nothing leaks", async () => {
      const ids: string[] = [];
      const shorts: string[] = [];
      const backend = c.backend();
      const pool = new SandboxPool({ backend, spec: c.spec(), min: 1, max: 2, maxQueue: 4, leaseTimeoutMs: 240_000, onEvent: (e) => void (e.type === "spawned" && ids.push(e.sandboxId)) });
      try {
        await pool.start();
        for (const round of c.rounds) {
          const lease = await pool.lease();
          const sb = lease.sandbox;
          const short = shortOf(sb);
          if (short) shorts.push(short);
          await round.prepare?.(sb);
          const { started, ended } = longCall(sb);
          expect(await bounded(started)).toBe(true);
          const victims = round.strike(sb);
          expect(victims.length, `no runtime process of ${sb.id} found to kill`).toBeGreaterThan(0);
          const outcome = await bounded(ended);
          expect(outcome, "the killed call hung").not.toBe("hang");
          round.expectEnding(outcome as ExecResult | Error);
          await lease.release();
        }

        // The next lease is a different, working sandbox.
        const next = await pool.lease();
        const ok = await collect(next.sandbox.exec(["sh", "-c", "echo alive"]));
        expect(ok.stdout.toString()).toBe("alive\n");
        const nextShort = shortOf(next.sandbox);
        if (nextShort) shorts.push(nextShort);
        await next.release();
      } finally {
        // Thaw a frozen QEMU so its teardown is the ordinary one (SIGKILL would work on it too).
        for (const p of frozen.splice(0)) {
          try {
            process.kill(p, "SIGCONT");
          } catch {
            // already gone
          }
        }
        await pool.close();
        await backend.close?.();
      }
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBeGreaterThanOrEqual(c.rounds.length + 1);
      const leaks = [...(await c.leftovers(ids)), ...ids.flatMap((id) => sandboxLeaks(id, c.folders(id))), ...shorts.flatMap(networkObjects)];
      expect(leaks).toEqual([]);
      if (c.name.startsWith("namespace")) expect(shorts.length).toBeGreaterThanOrEqual(2); // the networked case really had networks
    }, 300_000);
  });
}

interface IdleCase {
  name: string;
  skip: string | undefined;
  backend: () => Backend;
  spec: () => SandboxSpec;
  /** The host processes that are the sandbox's runtime: killed while it is idle. */
  runtime: (id: string) => number[];
  leftovers: (ids: string[]) => Promise<string[]>;
  folders: (id: string) => string[];
}

const IDLE_CASES: IdleCase[] = [
  {
    name: "micro-VM (SIGKILL to QEMU of a warm sandbox)",
    ...MICROVM,
    backend: () => new MicrovmBackend({ prestarted: 0 }),
    spec: microvmSpec,
    runtime: qemuPids,
  },
  {
    name: "gVisor (SIGKILL to the sentry of a warm sandbox)",
    ...GVISOR,
    backend: () => new GvisorBackend(),
    spec: gvisorSpec,
    runtime: sentryPids,
  },
];

for (const c of IDLE_CASES) {
  announceSkip(`chaos kill: ${c.name} while idle in the pool`, c.skip);
  describe.skipIf(c.skip !== undefined)(`kill while idle in the pool: ${c.name}`, () => {
    it("the pool does not hand out the dead sandbox: the lease gets a fresh, working one, and nothing leaks", async () => {
      const ids: string[] = [];
      const backend = c.backend();
      const pool = new SandboxPool({ backend, spec: c.spec(), min: 1, max: 2, maxQueue: 4, leaseTimeoutMs: 240_000, onEvent: (e) => void (e.type === "spawned" && ids.push(e.sandboxId)) });
      try {
        await pool.start();
        expect(pool.stats().idle).toBe(1);
        const victim = ids[0]!;
        const killed = killAll(c.runtime(victim), "SIGKILL");
        expect(killed.length, `no runtime process of ${victim} found to kill`).toBeGreaterThan(0);
        // Until the runtime's exit is seen the sandbox cannot know; the pool's next lease comes after it
        // (gone from /proc means reaped, and the exit event follows at once; the pause is slack for it).
        let waiting = true;
        const gone = async (): Promise<void> => {
          while (waiting && c.runtime(victim).length > 0) await new Promise((r) => setTimeout(r, 50));
        };
        const exit = await bounded(gone());
        waiting = false;
        expect(exit, "the killed runtime never went away").not.toBe("hang");
        await new Promise((r) => setTimeout(r, 500));

        const lease = await pool.lease();
        expect(lease.sandbox.id, "the pool handed out the sandbox whose runtime was killed").not.toBe(victim);
        expect(lease.hit).toBe(false);
        const ok = await collect(lease.sandbox.exec(["sh", "-c", "echo alive"]));
        expect(ok.stdout.toString()).toBe("alive\n");
        await lease.release();
      } finally {
        await pool.close();
        await backend.close?.();
      }
      expect(new Set(ids).size).toBe(ids.length);
      const leaks = [...(await c.leftovers(ids)), ...ids.flatMap((id) => sandboxLeaks(id, c.folders(id)))];
      expect(leaks).toEqual([]);
    }, 300_000);
  });
}

interface McpCase {
  name: string;
  skip: string | undefined;
  /** The `ev` server (server-everything over stdio) on this backend. */
  server(staged: StagedServers): Record<string, unknown>;
  connectTimeoutSeconds: number;
  /** Kill the runtime of the server's sandbox; returns the pids hit. */
  strike(sb: Sandbox): number[];
  /** How long after the call is sent the kill comes (the request should have reached the server). */
  delayMs: number;
  /** What the audit row's error must say of the cause. */
  auditCause(sb: Sandbox): RegExp;
  leftovers(ids: string[]): Promise<string[]>;
  folders(id: string): string[];
}

const MCP_CASES: McpCase[] = [
  {
    name: "namespace: SIGKILL to the server's bwrap",
    ...NAMESPACE,
    server: (staged) => ({ command: staged.node, args: ["/opt/mcp/everything.mjs", "stdio"], sandbox: { mounts: [staged.mount], limits: { memory: "384M" } } }),
    connectTimeoutSeconds: 30,
    strike: (sb) => killAll(pidsOf(sb.id, (a) => a.endsWith("bwrap")), "SIGKILL"),
    delayMs: 300,
    auditCause: () => /killed by SIGKILL/,
  },
  {
    name: "micro-VM: SIGKILL to the server's QEMU",
    ...MICROVM,
    server: (staged) => ({
      command: "/usr/bin/node",
      args: ["/tmp/everything.mjs", "stdio"],
      files: [{ source: staged.hostPath("everything"), target: "/tmp/everything.mjs" }],
      sandbox: { backend: "microvm", limits: { memory: "512M" } },
    }),
    connectTimeoutSeconds: 180,
    strike: (sb) => killAll(qemuPids(sb.id), "SIGKILL"),
    delayMs: 1_500,
    auditCause: (sb) => new RegExp(`The micro-VM of sandbox ${sb.id} stopped unexpectedly \\(SIGKILL\\)`),
  },
  {
    name: "gVisor: SIGKILL to the server's runsc-sandbox (sentry)",
    ...GVISOR,
    server: (staged) => ({ command: staged.node, args: ["/opt/mcp/everything.mjs", "stdio"], sandbox: { backend: "gvisor", mounts: [staged.mount], limits: { memory: "384M" } } }),
    connectTimeoutSeconds: 60,
    strike: (sb) => killAll(sentryPids(sb.id), "SIGKILL"),
    delayMs: 500,
    auditCause: (sb) => new RegExp(`The gVisor sandbox ${sb.id} stopped \\(its runsc-sandbox process is gone\\)`),
  },
];

for (const c of MCP_CASES) {
  announceSkip(`chaos kill during an MCP call: ${c.name}`, c.skip);
  describe.skipIf(c.skip !== undefined)(`kill the sandbox under an MCP server during a tool call: ${c.name}`, () => {
    it("the call fails with E_MCP_SERVER_CRASHED in bounded time, the audit log records it, the server comes back in a fresh sandbox, nothing leaks", async () => {
      const staged = await stageMcpServers(["everything"]);
      const sandboxes = new RecordingSandboxes();
      const approver = new ScriptedApprover();
      const audit = new MemoryAudit();
      const config = parseConfig({ mcp: { servers: { ev: c.server(staged) }, callTimeoutSeconds: 120, connectTimeoutSeconds: c.connectTimeoutSeconds, reconnect: { attempts: 3, baseMs: 50, maxMs: 200 } } });
      const hub = new McpHub({ config: config.mcp, gate: { rules: [], workspaceRoots: ["/workspace"], timeoutMs: 5_000, approver }, audit, sandboxes });
      try {
        await hub.start();
        expect(hub.status()[0], hub.status()[0]?.lastError).toMatchObject({ state: "ready" });
        const victim = sandboxes.made.at(-1)!;
        expect(victim.backend).toBe(c.name.startsWith("micro-VM") ? "microvm" : c.name.startsWith("gVisor") ? "gvisor" : "namespace");

        approver.answers.push(true); // a long-running operation is red: approved, so it runs
        const rowsBefore = audit.rows.length;
        const pending = hub.call("ev__trigger-long-running-operation", { duration: 60, steps: 6 });
        await new Promise((r) => setTimeout(r, c.delayMs));
        expect(c.strike(victim).length, `no runtime process of ${victim.id} found to kill`).toBeGreaterThan(0);
        const res = await bounded(pending);
        expect(res, "the call whose sandbox was killed hung").not.toBe("hang");
        if (res === "hang") return;
        expect(res.isError).toBe(true);
        expect(outcome(res).code, text(res)).toBe("E_MCP_SERVER_CRASHED");
        // The failure is on record: one row for this call, approved, carrying the crash.
        const rows = audit.rows.slice(rowsBefore);
        expect(rows).toHaveLength(1);
        expect(rows[0]).toMatchObject({ server: "ev", tool: "trigger-long-running-operation", decision: "approved", error: expect.stringContaining("stopped during") });
        expect(rows[0]!.error).toMatch(c.auditCause(victim));

        // The server comes back in a fresh sandbox and answers; the dead sandbox is gone.
        expect(await eventually(() => hub.status()[0]!.state === "ready", c.connectTimeoutSeconds * 1000, 200), hub.status()[0]?.lastError).toBe(true);
        expect(text(await hub.call("ev__echo", { message: "back" }))).toContain("back");
        expect(sandboxes.made.length).toBe(2);
        expect(sandboxes.made[1]).not.toBe(victim);
        expect(victim.destroyed).toBe(true);
        expect(audit.rows.at(-1)).toMatchObject({ server: "ev", tool: "echo" });
        expect(audit.rows.at(-1)?.error ?? null).toBeNull();
      } finally {
        await hub.close();
        await sandboxes.close();
        await staged.cleanup();
      }
      const ids = sandboxes.ids();
      const leaks = [...(await c.leftovers(ids)), ...ids.flatMap((id) => sandboxLeaks(id, c.folders(id)))];
      expect(leaks).toEqual([]);
    }, 600_000);
  });
}
