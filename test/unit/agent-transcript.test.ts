/** Task transcripts on disk: modes, secrets kept out, list and read back, bad ids refused. */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtemp, rm, stat, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TranscriptWriter, listTasks, newTaskId, readTranscript, tasksDir } from "../../src/agent/transcript.js";
import { runTask } from "../../src/agent/loop.js";
import { ReplayProvider } from "../../src/agent/providers/replay.js";
import { parseRecording } from "../../src/agent/providers/recording.js";
import { FakeHub } from "../helpers/agent-llm.js";

describe("task transcripts", () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), "lg-agent-tr-")), "tasks");
  });
  afterEach(async () => {
    await rm(join(dir, ".."), { recursive: true, force: true });
  });

  it("lives next to the audit log, or in the state folder", () => {
    expect(tasksDir("/var/lib/lg/audit.db")).toBe("/var/lib/lg/tasks");
    const before = process.env.LUMINAGUARD_STATE_DIR;
    process.env.LUMINAGUARD_STATE_DIR = "/srv/state";
    try {
      expect(tasksDir()).toBe("/srv/state/tasks");
    } finally {
      if (before === undefined) delete process.env.LUMINAGUARD_STATE_DIR;
      else process.env.LUMINAGUARD_STATE_DIR = before;
    }
    expect(newTaskId(new Date("2026-01-02T03:04:05Z"))).toMatch(/^20260102-030405-[0-9a-f]{6}$/);
  });

  it("records a whole task, folder 0700 and file 0600, with no secrets", async () => {
    const w = TranscriptWriter.create(dir, { secrets: ["sk-live-abcdef123456"], redact: ["*ssn*"] });
    const recording = parseRecording([{ text: "using sk-live-abcdef123456 now", toolCalls: [{ name: "web__login", args: { user: "me", password: "hunter2", ssn: "123", nested: { api_key: "k" } } }] }, { text: "done" }], "r.json");
    const result = await runTask({ task: "log in", hub: new FakeHub([{ name: "web__login" }]), provider: new ReplayProvider(recording), limits: { maxSteps: 5, timeoutMs: 5000, tokenBudget: 100_000 }, transcript: w });
    w.close();
    expect(result.transcriptPath).toBe(w.path);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(w.path)).mode & 0o777).toBe(0o600);
    const text = await readFile(w.path, "utf8");
    expect(text).not.toContain("sk-live-abcdef123456");
    expect(text).not.toContain("hunter2");
    expect(text).not.toMatch(/"ssn":"123"/);
    expect(text).toContain("[REDACTED]");
    const records = readTranscript(w.id, dir);
    expect(records.map((r) => r.type)).toEqual(["task", "message", "usage", "message", "tool-call", "tool-result", "message", "usage", "message", "end"]);
    expect(records[0]).toMatchObject({ type: "task", id: w.id, task: "log in", provider: "replay", model: "r.json", tools: ["web__login"] });
    expect(records.find((r) => r.type === "tool-call")).toMatchObject({ args: { user: "me", password: "[REDACTED]", ssn: "[REDACTED]", nested: { api_key: "[REDACTED]" } } });
  });

  it("lists tasks newest first with their end, and shows unfinished ones as running", async () => {
    const a = TranscriptWriter.create(dir, { id: "20260101-000000-aaaaaa" });
    a.write({ type: "task", id: a.id, task: "first", provider: "replay", model: "m", limits: { maxSteps: 1, timeoutMs: 1, tokenBudget: 1 }, system: "s", tools: [], history: 0 });
    a.write({ type: "end", status: "done", reason: "the model finished", steps: 1, usage: { inputTokens: 3, outputTokens: 4 }, denied: 0, toolCalls: 0, error: null });
    a.close();
    await new Promise((r) => setTimeout(r, 5));
    const b = TranscriptWriter.create(dir, { id: "20260101-000001-bbbbbb" });
    b.write({ type: "task", id: b.id, task: "second", provider: "openai", model: "gpt", limits: { maxSteps: 1, timeoutMs: 1, tokenBudget: 1 }, system: "s", tools: [], history: 0 });
    b.close();
    await writeFile(join(dir, "junk.jsonl"), "not json\n");
    const tasks = listTasks(dir);
    expect(tasks.map((t) => [t.id, t.task, t.status])).toEqual([
      [b.id, "second", "running"],
      [a.id, "first", "done"],
    ]);
    expect(tasks[1]).toMatchObject({ steps: 1, usage: { inputTokens: 3, outputTokens: 4 }, reason: "the model finished" });
    expect(listTasks(join(dir, "missing"))).toEqual([]);
  });

  it("refuses ids that are not ids and names unknown tasks", () => {
    expect(() => readTranscript("../../etc/passwd", dir)).toThrow(expect.objectContaining({ code: "E_AGENT_UNKNOWN_TASK" }));
    expect(() => readTranscript("20990101-000000-ffffff", dir)).toThrow(/No task '20990101-000000-ffffff'/);
    expect(() => TranscriptWriter.create(dir, { id: "a/b" })).toThrow(expect.objectContaining({ code: "E_AGENT_TRANSCRIPT" }));
  });
});

describe("startTask (for the daemon)", () => {
  it("returns the id at once and the result later, with the transcript closed and readable", async () => {
    const root = await mkdtemp(join(tmpdir(), "lg-agent-start-"));
    try {
      const { parseConfig } = await import("../../src/config/load.js");
      const { startTask } = await import("../../src/agent/start.js");
      const config = parseConfig({ audit: { path: join(root, "audit.db") }, agent: { provider: "replay", replay: "sample:fs-edit", maxSteps: 2 } });
      const started = await startTask({ config, hub: new FakeHub([{ name: "fs__list_directory" }, { name: "fs__read_text_file" }]), task: "demo", env: {} });
      expect(started.provider.name).toBe("replay");
      expect(started.transcriptPath).toBe(join(root, "tasks", `${started.id}.jsonl`));
      const result = await started.done;
      expect(result).toMatchObject({ id: started.id, status: "max_steps", steps: 2 });
      expect(listTasks(join(root, "tasks"))).toEqual([expect.objectContaining({ id: started.id, status: "max_steps" })]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
