/** Transcripts name their writer process; a daemon start closes the ones whose writer died, once. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TranscriptWriter, listTasks, readTranscript, setTranscriptOwnerKind, unfinishedTasks } from "../../src/agent/transcript.js";
import { closeInterruptedTasks } from "../../src/daemon/interrupted.js";

const LIMITS = { maxSteps: 5, timeoutMs: 1000, tokenBudget: 100 };
const head = (id: string, writer?: unknown) => JSON.stringify({ t: "2026-01-01T00:00:00.000Z", type: "task", id, task: "t", provider: "replay", model: "m", limits: LIMITS, system: "", tools: [], history: 0, ...(writer ? { writer } : {}) });

describe("interrupted tasks", () => {
  const dirs: string[] = [];
  afterEach(() => {
    setTranscriptOwnerKind("cli");
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), "lg-interrupted-"));
    dirs.push(d);
    return d;
  };

  it("the writer stamps its pid, start time and kind on the task record", () => {
    const dir = tmp();
    setTranscriptOwnerKind("daemon");
    const w = TranscriptWriter.create(dir, { id: "a1" });
    w.write({ type: "task", id: "a1", task: "t", provider: "replay", model: "m", limits: LIMITS, system: "", tools: [], history: 0 });
    w.close();
    const first = readTranscript("a1", dir)[0]!;
    expect(first.type === "task" && first.writer).toMatchObject({ pid: process.pid, kind: "daemon" });
    expect(first.type === "task" && first.writer!.startTime).toBeGreaterThan(0);
  });

  it("closes only transcripts whose writer is gone, counts what happened, and only once", async () => {
    const dir = tmp();
    const dead = spawnSync("true").pid; // exited: its pid names no live process with this start time
    writeFileSync(
      join(dir, "dead.jsonl"),
      [
        head("dead", { pid: dead, startTime: 1, kind: "daemon" }),
        JSON.stringify({ t: "x", type: "tool-call", step: 1, id: "c1", name: "fs__read", args: {}, verdict: "green" }),
        JSON.stringify({ t: "x", type: "usage", step: 2, usage: { inputTokens: 1, outputTokens: 2 }, total: { inputTokens: 5, outputTokens: 7 }, keyIndex: null }),
        '{"t":"x","type":"mess', // cut by the crash mid-write
      ].join("\n"),
    );
    writeFileSync(join(dir, "live.jsonl"), `${head("live", { pid: process.pid, startTime: 0, kind: "cli" })}\n`);
    writeFileSync(join(dir, "old.jsonl"), `${head("old")}\n`);
    expect(unfinishedTasks(dir).map((t) => t.id).sort()).toEqual(["dead", "live", "old"]);

    const closed = await closeInterruptedTasks(dir);
    expect(closed).toEqual([{ id: "dead", pid: dead, reason: `interrupted: the daemon that ran it stopped (pid ${dead})` }]);
    const end = readTranscript("dead", dir).at(-1)!;
    expect(end).toMatchObject({ type: "end", status: "error", steps: 2, toolCalls: 1, denied: 0, usage: { inputTokens: 5, outputTokens: 7 }, error: { code: "E_DAEMON_INTERRUPTED" } });
    expect(readFileSync(join(dir, "dead.jsonl"), "utf8").endsWith("\n")).toBe(true);
    expect(listTasks(dir).find((t) => t.id === "dead")).toMatchObject({ status: "error", reason: `interrupted: the daemon that ran it stopped (pid ${dead})` });
    expect(listTasks(dir).find((t) => t.id === "live")?.status).toBe("running");
    expect(await closeInterruptedTasks(dir)).toEqual([]);
  });
});
