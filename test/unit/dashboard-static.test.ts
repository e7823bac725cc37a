/**
 * The dashboard's embedded files and the route that serves them: every script
 * parses, nothing in them can turn API data into markup, the page holds no
 * inline script or style, and the CSP forbids both (the browser test shows the
 * page working under it).
 */
import { Hono } from "hono";
import { transformSync } from "esbuild";
import { describe, expect, it } from "vitest";
import type { DaemonEnv } from "../../src/daemon/context.js";
import { staticRoutes } from "../../src/daemon/routes/static.js";
import { DASHBOARD_CSP, WEB_FILES } from "../../src/daemon/web/index.js";

const scripts = Object.entries(WEB_FILES).filter(([name]) => name.endsWith(".js"));

function app(): Hono<DaemonEnv> {
  const a = new Hono<DaemonEnv>();
  staticRoutes(a);
  return a;
}

describe("dashboard files", () => {
  it.each(scripts)("%s parses as an ES module", (_name, file) => {
    expect(() => transformSync(file.body, { loader: "js", format: "esm" })).not.toThrow();
  });

  it.each(scripts)("%s uses no HTML-parsing sink or eval", (_name, file) => {
    expect(file.body).not.toMatch(/\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|createContextualFragment|DOMParser/);
  });

  it("every module a script imports is served", () => {
    for (const [name, file] of scripts) {
      for (const m of file.body.matchAll(/from "\.\/([\w-]+\.js)"/g)) expect(Object.keys(WEB_FILES), `${name} imports ${m[1]}`).toContain(m[1]);
    }
  });

  it("the page has no inline script, handler or style, and loads its own files", () => {
    const html = WEB_FILES["index.html"]!.body;
    expect(html).toContain('<script type="module" src="app.js"></script>');
    expect(html).toContain('<link rel="stylesheet" href="style.css">');
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script type="module" src="app.js">']);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(html).not.toMatch(/\sstyle=|<style/i);
  });
});

describe("the static route", () => {
  it("serves the page and its modules with a strict CSP", async () => {
    const page = await app().request("/ui/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toBe(DASHBOARD_CSP);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("require-trusted-types-for 'script'");
    expect(csp).not.toContain("unsafe");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await page.text()).toContain("Pending approvals");

    const js = await app().request("/ui/app.js");
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(await js.text()).toContain("followEvents");
    const css = await app().request("/ui/style.css");
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
  });

  it("answers 404 for unknown or inherited names and redirects / to /ui/", async () => {
    for (const name of ["nope.js", "constructor", "__proto__", "..%2Fpackage.json"]) expect((await app().request(`/ui/${name}`)).status).toBe(404);
    const root = await app().request("/");
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/ui/");
  });
});
