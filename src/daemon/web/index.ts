/**
 * The dashboard's static files, embedded as strings so the bundled CLI needs no
 * files beside it. The page is plain HTML + CSS + ES modules with no build step;
 * the static route serves whatever this table holds, under a strict CSP.
 */
import { API_JS } from "./api-js.js";
import { APP_JS } from "./app-js.js";
import { AUDIT_JS } from "./audit-js.js";
import { CARDS_JS } from "./cards-js.js";
import { DOM_JS } from "./dom-js.js";
import { INDEX_HTML } from "./index-html.js";
import { POOL_JS } from "./pool-js.js";
import { STYLE_CSS } from "./style-css.js";
import { TASKS_JS } from "./tasks-js.js";

export interface WebFile {
  contentType: string;
  body: string;
}

const JS = "text/javascript; charset=utf-8";

/** Files by URL path under /ui/ ("index.html", "app.js", ...). */
export const WEB_FILES: Readonly<Record<string, WebFile>> = {
  "index.html": { contentType: "text/html; charset=utf-8", body: INDEX_HTML },
  "style.css": { contentType: "text/css; charset=utf-8", body: STYLE_CSS },
  "app.js": { contentType: JS, body: APP_JS },
  "api.js": { contentType: JS, body: API_JS },
  "dom.js": { contentType: JS, body: DOM_JS },
  "cards.js": { contentType: JS, body: CARDS_JS },
  "tasks.js": { contentType: JS, body: TASKS_JS },
  "pool.js": { contentType: JS, body: POOL_JS },
  "audit.js": { contentType: JS, body: AUDIT_JS },
};

/**
 * The page's Content-Security-Policy: only its own files, no inline script or
 * style, API calls to this daemon only, and Trusted Types so any HTML-parsing
 * sink (innerHTML and friends) throws instead of inserting agent-made markup.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join("; ");
