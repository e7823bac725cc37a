/**
 * On daemon start: tasks a dead process left unfinished (a daemon killed with
 * -9, a crash, a power cut) would show "running" forever. Each transcript with
 * no end record whose writer process is gone gets one, status "error", so the
 * API, `task list` and `task show` say what happened and who stopped.
 */
import { appendEnd, unfinishedTasks } from "../agent/transcript.js";
import { ownerAlive } from "../policy/limits/index.js";

/** A task closed as interrupted. */
export interface InterruptedTask {
  id: string;
  pid: number;
  reason: string;
}

/** The error code written into the end record of an interrupted task. */
export const INTERRUPTED_CODE = "E_DAEMON_INTERRUPTED";

/**
 * Close every unfinished transcript in `dir` whose writer has exited. Transcripts
 * of live processes (a `luminaguard run` in another terminal) and ones without a
 * writer stamp (written before stamps existed: we cannot tell) are left alone.
 */
export async function closeInterruptedTasks(dir: string): Promise<InterruptedTask[]> {
  const closed: InterruptedTask[] = [];
  for (const t of unfinishedTasks(dir)) {
    const w = t.writer;
    if (!w || w.pid === process.pid) continue;
    if (await ownerAlive({ pid: w.pid, startTime: w.startTime })) continue;
    const who = w.kind === "daemon" ? "the daemon that ran it" : "the process that ran it";
    const reason = `interrupted: ${who} stopped (pid ${w.pid})`;
    appendEnd(t.path, {
      type: "end",
      status: "error",
      reason,
      steps: t.steps,
      usage: t.usage,
      denied: t.denied,
      toolCalls: t.toolCalls,
      error: { code: INTERRUPTED_CODE, message: `${reason}; the task did not finish. Start it again if it is still needed.` },
    });
    closed.push({ id: t.id, pid: w.pid, reason });
  }
  return closed;
}
