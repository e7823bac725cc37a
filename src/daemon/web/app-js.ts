/**
 * app.js: the dashboard's entry module. Reads the token, draws every panel
 * from the API, then keeps them current from the event stream (each event
 * kind re-reads only its panel, debounced). Approvals are reconciled by id so
 * a half-typed deny reason survives other cards coming and going.
 */
export const APP_JS = String.raw`
import { api, dropToken, followEvents, loadToken } from "./api.js";
import { auditPanel } from "./audit.js";
import { renderCard } from "./cards.js";
import { byId, el, show } from "./dom.js";
import { poolPanels } from "./pool.js";
import { tasksPanel } from "./tasks.js";

const hadToken = loadToken() !== null;
const conn = byId("conn");
let stopEvents = () => undefined;
let locked = false;

function setConn(state, text) {
  conn.className = "conn " + state;
  conn.textContent = text;
}

function needToken(detail) {
  if (locked) return;
  locked = true;
  stopEvents();
  dropToken();
  show(byId("main"), false);
  show(byId("auth"), true);
  byId("auth-url").textContent = location.origin + "/ui/#token=<daemon.tcp.token>";
  byId("auth-detail").textContent = (hadToken ? "The daemon refused this page's token. " : "This page was opened without a token. ") + (detail || "");
  setConn("down", "Not authorized");
}

/** Show a section's error under its heading (and clear it once the section loads again). */
function sectionError(sectionId, message) {
  const section = byId(sectionId);
  let p = section.querySelector(":scope > .section-error");
  if (!message) {
    if (p) p.remove();
    return;
  }
  if (!p) {
    p = el("p", { class: "section-error error", attrs: { role: "alert" } });
    section.querySelector("h2").after(p);
  }
  p.textContent = message;
}

// --- approvals ---------------------------------------------------------------
const approvalList = byId("approvals-list");
const cards = new Map();

function updateApprovalCount() {
  byId("approvals-count").textContent = cards.size ? "(" + cards.size + ")" : "";
  show(byId("approvals-empty"), cards.size === 0);
}

function removeCard(id) {
  const node = cards.get(String(id));
  if (!node) return;
  node.remove();
  cards.delete(String(id));
  updateApprovalCount();
}

const decided = (entry) => (err) => {
  // Decided elsewhere (terminal, another page) or expired: the list is stale.
  if (err && err.code === "E_APPROVAL_NOT_FOUND") schedule("approvals", 0);
  throw err;
};
const actions = {
  approve: (entry) =>
    api("POST", "/v1/approvals/" + encodeURIComponent(entry.id) + "/approve", { hash: entry.hash }).then(() => removeCard(entry.id), decided(entry)),
  deny: (entry, reason) =>
    api("POST", "/v1/approvals/" + encodeURIComponent(entry.id) + "/deny", reason ? { reason } : {}).then(() => removeCard(entry.id), decided(entry)),
};

async function refreshApprovals() {
  const pending = (await api("GET", "/v1/approvals")).pending || [];
  const ids = new Set(pending.map((p) => String(p.id)));
  for (const id of [...cards.keys()]) if (!ids.has(id)) removeCard(id);
  for (const p of pending) {
    const id = String(p.id);
    const existing = cards.get(id);
    if (existing && existing.getAttribute("data-hash") === String(p.hash)) continue;
    const node = renderCard(p, actions);
    node.setAttribute("data-hash", String(p.hash));
    if (existing) existing.replaceWith(node);
    else approvalList.append(node);
    cards.set(id, node);
  }
  updateApprovalCount();
}

// --- panels and refresh scheduling --------------------------------------------
const tasks = tasksPanel();
const pools = poolPanels();
const audit = auditPanel();
const refreshers = {
  approvals: ["approvals", refreshApprovals],
  tasks: ["tasks", () => tasks.refresh()],
  pool: ["sandboxes", () => pools.refresh()],
  audit: ["audit", () => audit.refresh()],
};
const timers = new Map();

function run(name) {
  const [sectionId, fn] = refreshers[name];
  return fn().then(
    () => sectionError(sectionId, ""),
    (err) => {
      if (err && err.status === 401) return needToken(err.message);
      sectionError(sectionId, (err && err.code ? err.code + ": " : "") + (err && err.message ? err.message : String(err)));
    },
  );
}

/** Re-read a panel soon; bursts of events collapse into one request. */
function schedule(name, delayMs) {
  if (timers.has(name) || locked) return;
  timers.set(name, setTimeout(() => {
    timers.delete(name);
    run(name);
  }, delayMs === undefined ? 150 : delayMs));
}

function refreshAll() {
  for (const name of Object.keys(refreshers)) run(name);
}

function onEvent(type, data) {
  if (type.startsWith("approval.")) {
    if (type === "approval.decided") removeCard(data.id);
    schedule("approvals");
  } else if (type.startsWith("task.")) {
    if (tasks.onEvent(type, data)) schedule("tasks", 300);
  } else if (type.startsWith("pool.") || type.startsWith("sandbox.")) {
    if (pools.onEvent(type, data)) schedule("pool", 300);
  } else if (type === "mcp.call") {
    schedule("audit", 300);
  }
}

function onState(state, detail) {
  if (state === "unauthorized") return needToken(detail);
  if (state === "open") {
    setConn("live", "Live");
    // Connected or reconnected: whatever happened meanwhile is re-read.
    refreshAll();
  } else {
    setConn("down", detail || "Disconnected");
  }
}

refreshAll();
stopEvents = followEvents(onEvent, onState);
setInterval(() => pools.tick(), 5000);
`;
