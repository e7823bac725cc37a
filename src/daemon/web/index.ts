/**
 * The dashboard's static files, embedded as strings so the bundled CLI needs no
 * files beside it. The dashboard (a later piece) replaces index.html and adds
 * its assets here; the route serves whatever this table holds.
 */
import { INDEX_HTML } from "./index-html.js";

export interface WebFile {
  contentType: string;
  body: string;
}

/** Files by URL path under /ui/ ("index.html", "app.js", ...). */
export const WEB_FILES: Readonly<Record<string, WebFile>> = {
  "index.html": { contentType: "text/html; charset=utf-8", body: INDEX_HTML },
};
