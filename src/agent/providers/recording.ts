/**
 * Recordings the replay provider plays: a list of assistant turns, each text
 * and/or tool calls. Accepted as a JSON list, as `{ "turns": [...] }`, or as a
 * task transcript (`<stateDir>/tasks/<id>.jsonl`), whose assistant messages are
 * the turns. Built-in samples are named `sample:<name>`.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import * as z from "zod/mini";
import { AgentError } from "../errors.js";
import { SAMPLES } from "../samples/index.js";

const turnSchema = z.strictObject({
  text: z.optional(z.string()),
  toolCalls: z.optional(
    z.array(
      z.strictObject({
        id: z.optional(z.string().check(z.minLength(1))),
        name: z.string().check(z.minLength(1)),
        args: z._default(z.record(z.string(), z.unknown()), {}),
      }),
    ),
  ),
  usage: z.optional(z.strictObject({ inputTokens: z.number().check(z.gte(0)), outputTokens: z.number().check(z.gte(0)) })),
});

const recordingSchema = z.union([
  z.array(turnSchema),
  z.strictObject({ name: z.optional(z.string()), task: z.optional(z.string()), description: z.optional(z.string()), turns: z.array(turnSchema) }),
]);

export type ReplayTurn = z.infer<typeof turnSchema>;

export interface Recording {
  /** Shown as the model name: the file's name or the sample's. */
  name: string;
  /** The task the recording was made for, if it says. */
  task?: string | undefined;
  turns: ReplayTurn[];
}

/** Names of the built-in recordings (`sample:<name>`). */
export function sampleNames(): string[] {
  return Object.keys(SAMPLES);
}

/** A recording from a file path or `sample:<name>`. */
export function loadRecording(spec: string): Recording {
  if (spec.startsWith("sample:")) {
    const name = spec.slice("sample:".length);
    const sample = SAMPLES[name];
    if (!sample) throw new AgentError("E_AGENT_REPLAY", `No built-in recording '${name}'. Built in: ${sampleNames().map((n) => `sample:${n}`).join(", ")}.`);
    return parseRecording(sample, spec);
  }
  let text: string;
  try {
    text = readFileSync(spec, "utf8");
  } catch (err) {
    throw new AgentError("E_AGENT_REPLAY", `Cannot read the recording ${spec}: ${(err as Error).message}. Pass a JSON file of assistant turns, a task transcript, or one of ${sampleNames().map((n) => `sample:${n}`).join(", ")}.`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    raw = fromTranscript(text, spec);
  }
  return parseRecording(raw, basename(spec));
}

/** Validate a recording already in memory. */
export function parseRecording(raw: unknown, name: string): Recording {
  const r = recordingSchema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.map((i) => (i.path.length > 0 ? `${i.message} (at ${i.path.join(".")})` : i.message));
    throw new AgentError("E_AGENT_REPLAY", `The recording ${name} is not a list of assistant turns ({"text": …, "toolCalls": [{"name": "server__tool", "args": {…}}]}): ${issues.join("; ")}`);
  }
  const data = r.data;
  return Array.isArray(data) ? { name, turns: data } : { name: data.name ?? name, task: data.task, turns: data.turns };
}

/** The assistant turns of a task transcript (JSON Lines), as a recording. */
function fromTranscript(text: string, spec: string): unknown {
  const turns: ReplayTurn[] = [];
  let task: string | undefined;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    let rec: { type?: string; task?: string; message?: { role?: string; text?: string; toolCalls?: { id: string; name: string; args: Record<string, unknown> }[] } };
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      throw new AgentError("E_AGENT_REPLAY", `The recording ${spec} is neither JSON nor a task transcript (JSON Lines).`);
    }
    if (rec.type === "task") task = rec.task;
    if (rec.type === "message" && rec.message?.role === "assistant") {
      turns.push({ text: rec.message.text ?? "", toolCalls: (rec.message.toolCalls ?? []).map((c) => ({ id: c.id, name: c.name, args: c.args })) });
    }
  }
  return { task, turns };
}
