/**
 * pool.js: the sandboxes made through the API (backend, age, limits) and the
 * warm pools' stats, with a small SVG chart of spawn latency: the pool's
 * p50/p95/p99 as bars and, beside them, each spawn seen since the page opened
 * (pool.spawned events). No chart library: a few rects and labels.
 */
export const POOL_JS = String.raw`
import { api } from "./api.js";
import { byId, el, fmtAge, fmtBytes, fmtMs, num, show, svg } from "./dom.js";

const KEEP_SPAWNS = 40;

/** The spawn-latency chart: percentile bars, then recent spawns as thin bars. */
export function spawnChart(stats, recent) {
  const W = 340, H = 96, top = 14, base = H - 18;
  const pct = [["p50", stats.spawnMs.p50], ["p95", stats.spawnMs.p95], ["p99", stats.spawnMs.p99]];
  const max = Math.max(1, ...pct.map((p) => Number(p[1]) || 0), ...recent);
  const y = (ms) => base - Math.round(((Number(ms) || 0) / max) * (base - top));
  const label = "Spawn latency: p50 " + fmtMs(stats.spawnMs.p50) + ", p95 " + fmtMs(stats.spawnMs.p95) + ", p99 " + fmtMs(stats.spawnMs.p99) +
    (recent.length ? "; last " + recent.length + " spawns from " + fmtMs(Math.min(...recent)) + " to " + fmtMs(Math.max(...recent)) : "; no spawns seen since this page opened");
  const chart = svg("svg", { class: "chart", attrs: { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": label } },
    svg("title", { text: label }),
    svg("line", { class: "axis", attrs: { x1: 0, x2: W, y1: base + 0.5, y2: base + 0.5 } }));
  pct.forEach(([name, ms], i) => {
    const x = 6 + i * 38;
    chart.append(
      svg("rect", { class: "bar " + name, attrs: { x, y: y(ms), width: 26, height: Math.max(1, base - y(ms)) } }, svg("title", { text: name + " " + fmtMs(ms) })),
      svg("text", { text: name, attrs: { x: x + 13, y: H - 4, "text-anchor": "middle" } }),
      svg("text", { text: fmtMs(ms), attrs: { x: x + 13, y: Math.max(10, y(ms) - 3), "text-anchor": "middle" } }));
  });
  const x0 = 130, slot = (W - x0 - 4) / KEEP_SPAWNS;
  recent.forEach((ms, i) => {
    chart.append(svg("rect", { class: "spark", attrs: { x: (x0 + i * slot).toFixed(1), y: y(ms), width: Math.max(1, slot - 1).toFixed(1), height: Math.max(1, base - y(ms)) } }, svg("title", { text: "spawn " + fmtMs(ms) })));
  });
  chart.append(svg("text", { text: recent.length ? "recent spawns (max " + fmtMs(max) + ")" : "recent spawns: none yet", attrs: { x: x0, y: H - 4 } }));
  return chart;
}

/** The sandboxes and pool panels: refresh() re-reads GET /v1/sandboxes, onEvent() takes pool.* and sandbox.* events. */
export function poolPanels() {
  const rows = byId("sandboxes-rows");
  const table = byId("sandboxes-table");
  const empty = byId("sandboxes-empty");
  const count = byId("sandboxes-count");
  const poolList = byId("pool-list");
  const poolEmpty = byId("pool-empty");
  const recent = new Map();
  let sandboxes = [];
  let pools = [];
  let fetchedAt = Date.now();

  function renderSandboxes() {
    rows.replaceChildren();
    const elapsed = (Date.now() - fetchedAt) / 1000;
    for (const s of sandboxes) {
      const limits = s.limits || {};
      const seccomp = s.seccomp || {};
      rows.append(el("tr", { attrs: { "data-sandbox-id": s.id } },
        el("td", { class: "mono", text: s.id }),
        el("td", { text: s.backend }),
        el("td", { class: "num", text: fmtAge(Number(s.ageSeconds) + elapsed) }),
        el("td", { class: "num", text: fmtBytes(limits.memoryBytes) }),
        el("td", { class: "num", text: limits.cpus }),
        el("td", { class: "num", text: limits.pids }),
        el("td", { text: s.network }),
        el("td", { text: [seccomp.level, seccomp.mode].filter(Boolean).join(" / ") }),
        el("td", { text: s.warm ? "yes" : "no" })));
    }
    count.textContent = sandboxes.length ? "(" + sandboxes.length + ")" : "";
    show(table, sandboxes.length > 0);
    show(empty, sandboxes.length === 0);
  }

  function renderPools() {
    poolList.replaceChildren();
    for (const p of pools) {
      const s = p.stats;
      poolList.append(el("div", { class: "pool", attrs: { "data-backend": p.backend } },
        el("h3", { text: p.backend + (p.default ? " (default, kept warm)" : " (on demand)") }),
        el("dl", { class: "facts" },
          el("dt", { text: "idle / active" }), el("dd", { text: num(s.idle) + " / " + num(s.active) + (s.creating ? " (" + num(s.creating) + " starting)" : "") }),
          el("dt", { text: "leased / queued" }), el("dd", { text: num(s.leased) + " / " + num(s.queued) }),
          el("dt", { text: "hits / misses" }), el("dd", { text: num(s.hits) + " / " + num(s.misses) }),
          el("dt", { text: "spawned / destroyed" }), el("dd", { text: num(s.spawned) + " / " + num(s.destroyed) + (s.spawnErrors ? " (" + num(s.spawnErrors) + " spawn errors)" : "") }),
          el("dt", { text: "lease wait p50 / p95" }), el("dd", { text: fmtMs(s.leaseWaitMs.p50) + " / " + fmtMs(s.leaseWaitMs.p95) })),
        spawnChart(s, recent.get(p.backend) || [])));
    }
    show(poolEmpty, pools.length === 0);
  }

  return {
    async refresh() {
      const body = await api("GET", "/v1/sandboxes");
      sandboxes = body.sandboxes || [];
      pools = body.pools || [];
      fetchedAt = Date.now();
      renderSandboxes();
      renderPools();
    },
    /** Ages move on without asking the daemon. */
    tick() {
      if (sandboxes.length) renderSandboxes();
    },
    /** pool.spawned feeds the chart; every pool.* and sandbox.* event asks for a refresh (debounced by the caller). */
    onEvent(type, data) {
      if (type === "pool.spawned" && typeof data.ms === "number") {
        const list = recent.get(data.backend) || [];
        list.push(data.ms);
        if (list.length > KEEP_SPAWNS) list.shift();
        recent.set(data.backend, list);
      }
      return true;
    },
  };
}
`;
