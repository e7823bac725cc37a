/**
 * audit.js: the audit log, newest first. The search box takes words matched
 * against "server__tool" in the page, and server:NAME / tool:NAME, which the
 * API filters on exactly (with the decision and since selects). "Verify chain"
 * asks GET /v1/audit/verify and shows what it found.
 */
export const AUDIT_JS = String.raw`
import { api } from "./api.js";
import { byId, cut, el, fmtMs, fmtTime, num, show } from "./dom.js";

const LIMIT = 200;

/** Split the search text into API filters (server:x, tool:y) and words matched in the page. */
export function parseSearch(text) {
  const out = { server: "", tool: "", words: [] };
  for (const token of String(text).trim().split(/\s+/).filter(Boolean)) {
    const m = /^(server|tool):(.+)$/i.exec(token);
    if (m) out[m[1].toLowerCase()] = m[2];
    else out.words.push(token.toLowerCase());
  }
  return out;
}

/** The audit panel: refresh() re-reads with the current filters; verify() checks the chain. */
export function auditPanel() {
  const form = byId("audit-form");
  const q = byId("audit-q");
  const decision = byId("audit-decision");
  const since = byId("audit-since");
  const rows = byId("audit-rows");
  const table = byId("audit-table");
  const empty = byId("audit-empty");
  const verifyButton = byId("audit-verify");
  const verifyResult = byId("audit-verify-result");
  let timer = null;
  let seq = 0;

  function row(r) {
    const call = String(r.server) + "__" + String(r.tool);
    return el("tr", { attrs: { "data-audit-id": r.id } },
      el("td", { class: "num", text: r.id }),
      el("td", { text: fmtTime(r.time) }),
      el("td", { class: "mono", text: call, attrs: { title: cut(JSON.stringify(r.args), 2000) } }),
      el("td", { text: String(r.verdict) + " / " + String(r.risk) }),
      el("td", { class: "decision-" + String(r.decision), text: String(r.decision) }),
      el("td", { text: r.decidedBy === null ? "–" : String(r.decidedBy) }),
      el("td", { class: "num", text: fmtMs(r.latencyMs) }),
      el("td", { class: r.error ? "error" : "", text: r.error ? cut(String(r.error), 300) : "" }));
  }

  async function refresh() {
    const mine = ++seq;
    const search = parseSearch(q.value);
    const params = new URLSearchParams({ limit: String(LIMIT) });
    if (search.server) params.set("server", search.server);
    if (search.tool) params.set("tool", search.tool);
    if (decision.value) params.set("decision", decision.value);
    if (since.value) params.set("since", since.value);
    const body = await api("GET", "/v1/audit?" + params.toString());
    // A slower older answer must not overwrite a newer one.
    if (mine !== seq) return;
    const shown = (body.rows || []).filter((r) => {
      const name = (String(r.server) + "__" + String(r.tool)).toLowerCase();
      return search.words.every((w) => name.includes(w));
    });
    rows.replaceChildren(...shown.map(row));
    empty.textContent = "No audit rows match.";
    show(table, shown.length > 0);
    show(empty, shown.length === 0);
  }

  async function verify() {
    verifyButton.disabled = true;
    verifyResult.className = "verify";
    verifyResult.textContent = "Verifying the chain…";
    try {
      const r = await api("GET", "/v1/audit/verify");
      verifyResult.replaceChildren();
      if (r.ok) {
        verifyResult.classList.add("ok");
        verifyResult.textContent = "Chain OK: " + num(r.rows) + " rows verified, nothing edited, deleted or reordered.";
      } else {
        verifyResult.classList.add("bad");
        const problems = r.problems || [];
        verifyResult.append(el("p", { text: "Chain BROKEN: " + num(problems.length + (r.moreProblems || 0)) + " problem(s) in " + num(r.rows) + " rows." }),
          el("ul", {}, problems.slice(0, 50).map((p) => el("li", { text: (p.id ? "row " + p.id + ": " : "") + String(p.message) }))));
      }
    } catch (err) {
      verifyResult.classList.add("bad");
      verifyResult.textContent = "Could not verify: " + err.message;
    } finally {
      verifyButton.disabled = false;
    }
  }

  const fail = (err) => {
    empty.textContent = "Could not read the audit log: " + err.message;
    show(empty, true);
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    refresh().catch(fail);
  });
  // Filter as the user types, without a request per key.
  q.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => refresh().catch(fail), 250);
  });
  decision.addEventListener("change", () => refresh().catch(fail));
  since.addEventListener("change", () => refresh().catch(fail));
  verifyButton.addEventListener("click", () => verify());

  return { refresh, verify };
}
`;
