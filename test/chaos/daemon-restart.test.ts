/**
 * Chaos: `luminaguard daemon` killed with SIGKILL while a task waits at the
 * Approval Cliff, then started again on the same config. The new daemon sweeps
 * what the dead one left (its MCP server's sandbox: processes, cgroup, scratch
 * folder), closes the dead daemon's unfinished task as failed with the reason
 * (API and `task show`), and the audit chain still verifies.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DaemonClient } from "../../src/daemon/client.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";
import type { Started } from "../helpers/loopback.js";
import { bin, cleanEnv } from "../helpers/cli-processes.js";
import { DaemonFixture } from "../helpers/daemon-fixture.js";
import { eventually } from "../helpers/procs.js";
import { cgroupsNamed, foldersNamed, mountsNaming, processesNaming } from "./leaks.js";

const TASK = "Fix the typo in README.md";

const skip = namespaceSkipReason() ?? (existsSync(join(import.meta.dirname, "../../dist/cli-bundle/luminaguard.mjs")) ? undefined : "the CLI is not bundled (node scripts/bundle-cli.mjs)");
announceSkip("chaos: daemon kill -9 and restart", skip);

interface TaskJson {
  id: string;
  state: string;
  error: string | null;
  reason?: string;
}

describe.skipIf(skip)("daemon killed with SIGKILL and started again", () => {
  let fx: DaemonFixture | undefined;
  let dir = "";
  let cfg = "";
  let socket = "";
  let env: Record<string, string> = {};

  const startDaemon = (): Promise<Started> => fx!.start(45_000);
  const cli = (args: string[]) => spawnSync(bin, args, { encoding: "utf8", timeout: 60_000, env: cleanEnv(env), input: "" });

  beforeAll(async () => {
    fx = await DaemonFixture.create("lg-chaos-daemon-", { agent: { provider: "replay" } });
    ({ dir, cfg, socket, env } = fx);
    await writeFile(fx.ws("README.md"), "# Demo\n\nThis is teh demo.\n", { mode: 0o666 });
  }, 60_000);

  afterAll(async () => {
    // SIGTERM lets a live daemon destroy its sandboxes; the killed one is already gone.
    await fx?.cleanup("SIGTERM");
  });

  it("sweeps the dead daemon's sandbox, marks its task failed with the reason, and the audit chain verifies", async () => {
    const first = await startDaemon();
    const deadPid = first.child.pid!;
    const client = new DaemonClient(socket);

    // A task that stops at the Approval Cliff (the sample's red edit).
    const { id: taskId } = await client.json<{ id: string }>("POST", "/v1/tasks", { task: TASK });
    const waiting = await eventually(async () => (await client.json<{ pending: unknown[] }>("GET", "/v1/approvals")).pending.length === 1, 45_000, 100);
    expect(waiting, first.stderr()).toBe(true);
    expect((await client.json<TaskJson>("GET", `/v1/tasks/${taskId}`)).state).toBe("running");

    // What the doomed daemon owns now: its owner folder of sandbox scratch space, and the sandbox ids in it.
    const ownerPrefix = `pid-${deadPid}-`;
    const owners = readdirSync(join(dir, "runtime", "sandboxes")).filter((n) => n.startsWith(ownerPrefix));
    expect(owners).toHaveLength(1);
    const sandboxIds = readdirSync(join(dir, "runtime", "sandboxes", owners[0]!)).filter((n) => n.startsWith("sb-"));
    expect(sandboxIds.length).toBeGreaterThan(0);
    expect(cgroupsNamed(ownerPrefix, true).length).toBeGreaterThan(0);
    // Its sandboxes' scratch disks (tmpfs mounts) outlive it: the next daemon's sweep must unmount them.
    expect(mountsNaming(ownerPrefix).length).toBeGreaterThan(0);

    await first.stop("SIGKILL");
    expect(first.child.signalCode).toBe("SIGKILL");
    expect(existsSync(socket)).toBe(true); // a killed daemon cannot remove its socket; the next one must cope

    const second = await startDaemon();
    expect(second.stderr()).toContain(`task ${taskId}: interrupted: the daemon that ran it stopped (pid ${deadPid}); marked failed`);

    // Nothing of the dead daemon's pid remains: no scratch folder or disk, no cgroup, no sandbox process.
    const leftovers = (): string[] => [
      ...foldersNamed(join(dir, "runtime", "sandboxes"), (n) => n.startsWith(ownerPrefix), 0).map((p) => `folder ${p}`),
      ...mountsNaming(ownerPrefix),
      ...cgroupsNamed(ownerPrefix, true),
      ...sandboxIds.flatMap((id) => processesNaming(id)),
    ];
    // The sweep ran before "listening on"; the grace only absorbs the kernel reaping the killed tree.
    expect(await eventually(() => leftovers().length === 0, 10_000, 100), leftovers().join("\n")).toBe(true);

    // The task reads failed with the reason: through the API of the new daemon, and `task show`.
    const status = await new DaemonClient(socket).json<TaskJson>("GET", `/v1/tasks/${taskId}`);
    expect(status).toMatchObject({ id: taskId, state: "failed", reason: `interrupted: the daemon that ran it stopped (pid ${deadPid})` });
    expect(status.error).toContain(`interrupted: the daemon that ran it stopped (pid ${deadPid})`);
    const show = cli(["task", "show", taskId, "--config", cfg]);
    expect(show.status, show.stderr).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`error: interrupted: the daemon that ran it stopped \\(pid ${deadPid}\\) \\(3 steps, 3 tool calls, 0 denied`));
    // The dead daemon's approval is not resurrected, and the file was never edited.
    expect((await new DaemonClient(socket).json<{ pending: unknown[] }>("GET", "/v1/approvals")).pending).toEqual([]);
    expect(await readFile(join(dir, "ws", "README.md"), "utf8")).toContain("teh");

    const verify = cli(["audit", "verify", "--config", cfg]);
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);

    // A second restart finds nothing more to close: the end record is written once.
    await second.stop("SIGTERM");
    expect(second.child.exitCode).toBe(0);
    const third = await startDaemon();
    expect(third.stderr()).not.toContain("interrupted");
    const transcript = (await readFile(join(dir, "state", "tasks", `${taskId}.jsonl`), "utf8")).trim().split("\n");
    expect(transcript.filter((l) => l.includes('"type":"end"'))).toHaveLength(1);
  }, 180_000);
});
