/**
 * The dashboard's static files (src/daemon/web): GET / redirects to /ui/, and
 * /ui/<file> serves the embedded file. No token needed: the files hold no data;
 * the page calls the API, which does.
 */
import type { DaemonApp } from "../context.js";
import { DASHBOARD_CSP, WEB_FILES } from "../web/index.js";

/** Mount / and /ui/*. */
export function staticRoutes(app: DaemonApp): void {
  app.get("/", (c) => c.redirect("/ui/", 302));
  app.get("/ui", (c) => c.redirect("/ui/", 301));
  app.get("/ui/*", (c) => {
    const name = c.req.path.slice("/ui/".length) || "index.html";
    const file = Object.hasOwn(WEB_FILES, name) ? WEB_FILES[name] : undefined;
    if (!file) return c.json({ error: { code: "E_DAEMON_NOT_FOUND", message: `No dashboard file ${name}.` } }, 404);
    return c.body(file.body, 200, {
      "content-type": file.contentType,
      "cache-control": "no-cache",
      // The page may only load its own files and talk to this daemon (see web/index.ts).
      "content-security-policy": DASHBOARD_CSP,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    });
  });
}
