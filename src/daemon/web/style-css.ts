/** The dashboard's stylesheet: plain, readable, fits 1280x800 in two columns; colour is never the only cue. */
export const STYLE_CSS = String.raw`
:root {
  --fg: #1d1f21; --muted: #5f6368; --bg: #f6f7f9; --panel: #fff; --line: #d8dce1;
  --red: #b3261e; --red-bg: #fdecea; --green: #1e7b34; --green-bg: #e7f5ea; --amber: #8a5a00; --blue: #1a56a6;
  --mono: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
}
* { box-sizing: border-box; }
/* Panels set display; hidden must still hide them. */
[hidden] { display: none !important; }
html { font: 14px/1.45 system-ui, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
body { margin: 0; }
h1 { font-size: 1.25rem; margin: 0; }
h2 { font-size: 1.05rem; margin: 0 0 .6rem; }
h3 { font-size: .95rem; margin: 0; font-family: var(--mono); word-break: break-all; }
code, pre, .mono { font-family: var(--mono); font-size: .85rem; }
pre { margin: .4rem 0; padding: .5rem .6rem; background: #f3f4f6; border-radius: 4px; overflow: auto; max-height: 22rem; white-space: pre; }
button { font: inherit; padding: .3rem .8rem; border-radius: 4px; border: 1px solid var(--line); background: #fff; cursor: pointer; }
button:focus-visible, input:focus-visible, select:focus-visible { outline: 2px solid var(--blue); outline-offset: 1px; }
button:disabled { opacity: .55; cursor: default; }
input, select { font: inherit; padding: .25rem .4rem; border: 1px solid var(--line); border-radius: 4px; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }

.top { display: flex; align-items: baseline; gap: 1rem; padding: .7rem 1.2rem; background: #20252b; color: #fff; }
.conn { margin: 0; font-size: .9rem; color: #c9d1d9; }
.conn.live::before { content: "● "; color: #6fdc8c; }
.conn.down::before { content: "● "; color: #ff8a80; }

.notice { margin: 1rem 1.2rem; padding: .8rem 1rem; background: #fff4e5; border: 1px solid #f0c36d; border-radius: 6px; }
.notice code { word-break: break-all; }

main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1rem; padding: 1rem 1.2rem; align-items: start; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; min-width: 0; }
.panel.wide { grid-row: span 2; }
.panel.full { grid-column: 1 / -1; }
.count { color: var(--muted); font-weight: normal; }
.empty { color: var(--muted); margin: .2rem 0; }
.error { color: var(--red); }

.cards { display: flex; flex-direction: column; gap: .8rem; }
.card { border: 1px solid var(--line); border-left: 5px solid var(--red); border-radius: 5px; padding: .6rem .8rem; }
.card.busy { opacity: .7; }
.card-head { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; }
.badge { font-size: .75rem; font-weight: bold; padding: .05rem .4rem; border-radius: 3px; letter-spacing: .03em; }
.badge.red { background: var(--red-bg); color: var(--red); }
.badge.green { background: var(--green-bg); color: var(--green); }
.risk-critical, .risk-high { color: var(--red); font-weight: bold; }
.risk-medium { color: var(--amber); }
.summary { font-weight: 600; margin: .35rem 0 .15rem; word-break: break-word; }
.why { color: var(--muted); margin: 0 0 .3rem; word-break: break-word; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem; margin: .3rem 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; font-family: var(--mono); word-break: break-all; }
.warn { color: var(--red); font-weight: 600; }
.diff .add { color: var(--green); background: var(--green-bg); display: inline-block; min-width: 100%; }
.diff .del { color: var(--red); background: var(--red-bg); display: inline-block; min-width: 100%; }
.diff .hunk { color: var(--blue); }
.diff .meta { font-weight: bold; }
.diff .note { color: var(--muted); font-style: italic; }
.card-actions { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; margin-top: .5rem; }
.card-actions label { display: flex; align-items: center; gap: .3rem; color: var(--muted); }
.card-actions input { width: 14rem; }
button.approve { background: var(--green); border-color: var(--green); color: #fff; }
button.deny { background: #fff; border-color: var(--red); color: var(--red); }
.expires { color: var(--muted); font-size: .85rem; margin-left: auto; }
.card-status { margin: .3rem 0 0; }

.tasks { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: .6rem; }
.task { border: 1px solid var(--line); border-radius: 5px; padding: .5rem .7rem; }
.task-head { display: flex; gap: .5rem; align-items: baseline; flex-wrap: wrap; }
.task-text { margin: .2rem 0; word-break: break-word; }
.state { font-size: .8rem; padding: 0 .35rem; border-radius: 3px; background: #eef1f4; }
.state.running, .state.queued { background: #e3ecfa; color: var(--blue); }
.state.succeeded { background: var(--green-bg); color: var(--green); }
.state.failed, .state.cancelled { background: var(--red-bg); color: var(--red); }
.steps { margin: .3rem 0 0; padding-left: 1.2rem; font-size: .85rem; max-height: 12rem; overflow: auto; }
.steps li { word-break: break-word; }

.grid { width: 100%; border-collapse: collapse; font-size: .85rem; }
.grid th, .grid td { text-align: left; padding: .25rem .45rem; border-bottom: 1px solid var(--line); vertical-align: top; }
.grid th { color: var(--muted); font-weight: 600; }
.grid td.mono { word-break: break-all; }
.grid td.num { text-align: right; font-variant-numeric: tabular-nums; }

.pools { display: flex; flex-direction: column; gap: .8rem; }
.pool h3 { font-family: inherit; margin-bottom: .3rem; }
.pool .facts dd { font-family: inherit; }
.chart { display: block; margin-top: .4rem; }
.chart .bar { fill: #6b8fc9; }
.chart .bar.p95 { fill: #d49a2a; }
.chart .bar.p99 { fill: #c4574f; }
.chart .spark { fill: #7aa874; }
.chart text { font: 11px system-ui, sans-serif; fill: var(--muted); }
.chart .axis { stroke: var(--line); }

.filters { display: flex; flex-wrap: wrap; gap: .6rem; align-items: center; margin-bottom: .5rem; }
.filters input[type=search] { width: 20rem; }
.verify { margin: .3rem 0; }
.verify.ok { color: var(--green); font-weight: 600; }
.verify.bad { color: var(--red); font-weight: 600; }
.decision-denied, .decision-not-run { color: var(--red); }
.decision-approved { color: var(--green); }

@media (max-width: 900px) { main { grid-template-columns: 1fr; } .panel.wide { grid-row: auto; } }
`;
