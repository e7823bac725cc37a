/**
 * The dashboard's page: semantic sections the scripts fill in. No inline script
 * or style (the CSP forbids both); every piece of data arrives later through the
 * API and is inserted as text by app.js and its modules.
 */
export const INDEX_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>LuminaGuard</title>
<link rel="stylesheet" href="style.css">
<script type="module" src="app.js"></script>
</head>
<body>
<header class="top">
  <h1>LuminaGuard</h1>
  <p id="conn" class="conn" role="status" aria-live="polite">Connecting…</p>
</header>

<div id="auth" class="notice" role="alert" hidden>
  <h2>This page needs the daemon's token</h2>
  <p>Over TCP the daemon answers only requests that carry its bearer token. Open
  <code id="auth-url">http://127.0.0.1:&lt;port&gt;/ui/#token=&lt;daemon.tcp.token&gt;</code>
  (the token stays in the <code>#fragment</code>, which the browser never sends to a server; this page keeps it for this tab only).</p>
  <p id="auth-detail"></p>
</div>

<noscript><p class="notice">The dashboard needs JavaScript; the JSON API under <code>/v1/</code> works without it.</p></noscript>

<main id="main">
  <section id="approvals" class="panel wide" aria-labelledby="approvals-h">
    <h2 id="approvals-h">Pending approvals <span id="approvals-count" class="count"></span></h2>
    <p id="approvals-empty" class="empty">Nothing is waiting for a decision.</p>
    <div id="approvals-list" class="cards"></div>
  </section>

  <section id="tasks" class="panel" aria-labelledby="tasks-h">
    <h2 id="tasks-h">Running tasks</h2>
    <p id="tasks-note" class="empty">Loading…</p>
    <ol id="tasks-list" class="tasks"></ol>
  </section>

  <section id="pool" class="panel" aria-labelledby="pool-h">
    <h2 id="pool-h">Sandbox pools</h2>
    <p id="pool-empty" class="empty">No pool has started yet.</p>
    <div id="pool-list" class="pools"></div>
  </section>

  <section id="sandboxes" class="panel full" aria-labelledby="sandboxes-h">
    <h2 id="sandboxes-h">Sandboxes <span id="sandboxes-count" class="count"></span></h2>
    <p id="sandboxes-empty" class="empty">No sandboxes made through the API are alive.</p>
    <table id="sandboxes-table" class="grid" hidden>
      <caption class="sr-only">Sandboxes with backend, age and limits</caption>
      <thead><tr>
        <th scope="col">ID</th><th scope="col">Backend</th><th scope="col">Age</th><th scope="col">Memory</th>
        <th scope="col">CPUs</th><th scope="col">PIDs</th><th scope="col">Network</th><th scope="col">Seccomp</th><th scope="col">Warm</th>
      </tr></thead>
      <tbody id="sandboxes-rows"></tbody>
    </table>
  </section>

  <section id="audit" class="panel full" aria-labelledby="audit-h">
    <h2 id="audit-h">Audit log</h2>
    <form id="audit-form" class="filters" role="search" aria-label="Filter the audit log">
      <label>Search <input id="audit-q" type="search" name="q" autocomplete="off" spellcheck="false"
        placeholder="fs, write_file, server:fs tool:write_file"></label>
      <label>Decision
        <select id="audit-decision" name="decision">
          <option value="">any</option><option value="auto">auto</option><option value="approved">approved</option>
          <option value="denied">denied</option><option value="not-run">not-run</option>
        </select></label>
      <label>Since
        <select id="audit-since" name="since">
          <option value="">any time</option><option value="15m">15 minutes</option><option value="1h">1 hour</option>
          <option value="24h">24 hours</option><option value="168h">7 days</option>
        </select></label>
      <button type="submit">Search</button>
      <button id="audit-verify" type="button">Verify chain</button>
    </form>
    <div id="audit-verify-result" class="verify" role="status" aria-live="polite"></div>
    <p id="audit-empty" class="empty">No audit rows match.</p>
    <table id="audit-table" class="grid" hidden>
      <caption class="sr-only">Audit rows, newest first</caption>
      <thead><tr>
        <th scope="col">#</th><th scope="col">Time</th><th scope="col">Call</th><th scope="col">Verdict</th><th scope="col">Decision</th>
        <th scope="col">Decided by</th><th scope="col">Latency</th><th scope="col">Error</th>
      </tr></thead>
      <tbody id="audit-rows"></tbody>
    </table>
  </section>
</main>
</body>
</html>
`;
