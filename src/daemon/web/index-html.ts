/** A placeholder page until the dashboard lands: says what the daemon offers. */
export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>LuminaGuard</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
  code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; }
</style>
</head>
<body>
<h1>LuminaGuard daemon</h1>
<p>The dashboard is not built yet. The daemon's JSON API is under <code>/v1/</code>:
<code>/v1/sandboxes</code>, <code>/v1/tasks</code>, <code>/v1/approvals</code>, <code>/v1/audit</code>,
<code>/v1/events</code> (server-sent events); MCP clients connect to <code>/mcp</code>;
Prometheus scrapes <code>/metrics</code>.</p>
</body>
</html>
`;
