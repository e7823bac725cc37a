/**
 * tasks.js: agent tasks with their live steps. GET /v1/tasks gives the list;
 * task.* events add steps as they happen. A daemon without an agent answers
 * 503 E_DAEMON_NO_AGENT: the panel says so instead of failing.
 */
export const TASKS_JS = String.raw`
import { api } from "./api.js";
import { byId, cut, el, fmtTime, show } from "./dom.js";

// Events too chatty to list as steps (streamed text, token counts).
const QUIET = new Set(["task.text-delta", "task.usage"]);
const MAX_STEPS = 200;
const FINISHED_SHOWN = 10;

/** One line for a task event: its kind and the few fields a person reads (never the tool arguments). */
export function stepText(type, data) {
  const kind = type.replace(/^task\./, "");
  const bits = [];
  const say = (v) => {
    if (v === undefined || v === null || v === "") return;
    bits.push(typeof v === "object" ? (typeof v.message === "string" ? v.message : JSON.stringify(v)) : String(v));
  };
  if (data.step !== undefined) bits.push("step " + data.step);
  say(data.name);
  say(data.verdict);
  if (data.ok === false) bits.push("failed");
  if (data.outcome && typeof data.outcome === "object") say(data.outcome.decision);
  for (const k of ["state", "status", "summary", "reason", "notice", "error"]) say(data[k]);
  if (typeof data.text === "string" && data.text) bits.push(cut(data.text.replace(/\s+/g, " "), 160));
  return kind + (bits.length ? ": " + cut(bits.join(" · "), 400) : "");
}

/** The tasks panel: refresh() re-reads the list, onEvent() takes task.* events. */
export function tasksPanel() {
  const note = byId("tasks-note");
  const list = byId("tasks-list");
  const steps = new Map();
  let tasks = [];
  let noAgent = false;

  function render() {
    list.replaceChildren();
    if (noAgent) {
      note.textContent = "No agent configured: this daemon serves sandboxes, approvals, the audit log and /mcp without one. Plug in an agent to run tasks here.";
      show(note, true);
      return;
    }
    const running = tasks.filter((t) => t.state === "running" || t.state === "queued");
    const finished = tasks.filter((t) => !(t.state === "running" || t.state === "queued")).slice(0, FINISHED_SHOWN);
    const shown = running.concat(finished);
    note.textContent = shown.length === 0 ? "No tasks yet." : running.length === 0 ? "Nothing running; recent tasks:" : "";
    show(note, note.textContent !== "");
    for (const t of shown) list.append(taskItem(t));
  }

  function taskItem(t) {
    const id = String(t.id);
    const lines = steps.get(id) || [];
    const ol = el("ol", { class: "steps", attrs: { "aria-label": "Steps of task " + id } });
    for (const line of lines) ol.append(el("li", { text: line }));
    return el("li", { class: "task", attrs: { "data-task-id": id } },
      el("div", { class: "task-head" },
        el("span", { class: "state " + String(t.state), text: String(t.state) }),
        el("span", { class: "mono", text: id }),
        el("span", { class: "empty", text: [t.provider, t.model].filter(Boolean).join(" / ") }),
        el("span", { class: "empty", text: t.createdAt ? fmtTime(t.createdAt) : "" }),
        typeof t.steps === "number" ? el("span", { class: "empty", text: t.steps + (t.steps === 1 ? " step" : " steps") }) : null),
      el("p", { class: "task-text", text: cut(String(t.task), 500) }),
      t.error ? el("p", { class: "error", text: String(t.error) }) : null,
      t.result ? el("p", { class: "task-result", text: "result: " + cut(String(t.result), 500) }) : null,
      lines.length ? ol : null);
  }

  return {
    async refresh() {
      try {
        tasks = (await api("GET", "/v1/tasks")).tasks || [];
        noAgent = false;
      } catch (err) {
        if (err.code !== "E_DAEMON_NO_AGENT") throw err;
        noAgent = true;
        tasks = [];
      }
      render();
    },
    /** A task.* event: remember it as a step and redraw; true when the list itself should be re-read. */
    onEvent(type, data) {
      const id = data.taskId === undefined ? null : String(data.taskId);
      if (id !== null && !QUIET.has(type)) {
        const lines = steps.get(id) || [];
        lines.push(stepText(type, data));
        if (lines.length > MAX_STEPS) lines.splice(0, lines.length - MAX_STEPS);
        steps.set(id, lines);
      }
      render();
      return true;
    },
  };
}
`;
