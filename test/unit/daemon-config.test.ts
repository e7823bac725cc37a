/** Config pieces the daemon brought: env overrides, YAML files, redaction for `config show`, the daemon section. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { applyEnvOverrides, envOverrides } from "../../src/config/env.js";
import { parseConfig, readConfigFile } from "../../src/config/load.js";
import { configSchema } from "../../src/config/schema.js";
import { REDACTED, redactConfig } from "../../src/config/redact.js";
import { STARTER_YAML, starterJson } from "../../src/config/starter.js";
import { validateConfig } from "../../src/config/validate.js";
import { parseYaml } from "../../src/config/yaml.js";

describe("env overrides", () => {
  it("maps LUMINAGUARD_<SECTION>__<KEY> onto schema keys, parsing JSON values", () => {
    const env = {
      LUMINAGUARD_POOL__MAX: "16",
      LUMINAGUARD_DAEMON__SHUTDOWN_TIMEOUT_SECONDS: "3",
      LUMINAGUARD_DAEMON__TCP__PORT: "8940",
      LUMINAGUARD_DAEMON__TCP__TOKEN: "a-token-of-sixteen-chars",
      LUMINAGUARD_SANDBOX__LIMITS__MEMORY: "1G",
      LUMINAGUARD_APPROVAL__WORKSPACEROOTS: '["/workspace","/srv"]',
      LUMINAGUARD_RUNTIME_DIR: "/tmp/not-an-override",
    };
    const overrides = envOverrides(env, configSchema);
    expect(overrides.map((o) => o.path.join("."))).toEqual(["approval.workspaceRoots", "daemon.shutdownTimeoutSeconds", "daemon.tcp.port", "daemon.tcp.token", "pool.max", "sandbox.limits.memory"]);
    const raw = applyEnvOverrides({ pool: { min: 1 }, daemon: { tcp: { host: "127.0.0.1" } } }, overrides);
    const cfg = parseConfig(raw);
    expect(cfg.pool).toMatchObject({ min: 1, max: 16 });
    expect(cfg.daemon.shutdownTimeoutSeconds).toBe(3);
    expect(cfg.daemon.tcp).toEqual({ port: 8940, host: "127.0.0.1", token: "a-token-of-sixteen-chars" });
    expect(cfg.sandbox.limits.memory).toBe(1024 ** 3);
    expect(cfg.approval.workspaceRoots).toEqual(["/workspace", "/srv"]);
  });

  it("keeps record keys (server names) as the file spells them", () => {
    const raw = { mcp: { servers: { myFs: { command: "/usr/bin/node" } } } };
    const out = applyEnvOverrides(raw, envOverrides({ LUMINAGUARD_MCP__SERVERS__MYFS__ENABLED: "false" }, configSchema));
    expect(out).toEqual({ mcp: { servers: { myFs: { command: "/usr/bin/node", enabled: false } } } });
    expect(raw.mcp.servers.myFs).toEqual({ command: "/usr/bin/node" });
  });

  it("a bad override fails validation like a bad file would", () => {
    const raw = applyEnvOverrides({}, envOverrides({ LUMINAGUARD_POOL__MAX: "many" }, configSchema));
    expect(() => parseConfig(raw)).toThrow(expect.objectContaining({ code: "E_CONFIG", message: expect.stringContaining("pool.max") }));
  });

  it("refuses a name with an empty level", () => {
    expect(() => envOverrides({ LUMINAGUARD_POOL____MAX: "1" }, configSchema)).toThrow(expect.objectContaining({ code: "E_CONFIG" }));
  });
});

describe("YAML config files", () => {
  let dir: string;
  const saved = { ...process.env };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "lg-cfg-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  });

  it("reads .yaml like JSON, env overrides laid on top", () => {
    const file = join(dir, "config.yaml");
    writeFileSync(file, "# comment\npool:\n  min: 0\n  max: 4 # inline\ndaemon:\n  webhooks:\n    - url: http://127.0.0.1:9/hook\n      events: [task.*]\n      secret: s3cret-s3cret-s3cret\n");
    process.env.LUMINAGUARD_POOL__MAX = "5";
    const cfg = parseConfig(readConfigFile(file));
    expect(cfg.pool).toMatchObject({ min: 0, max: 5 });
    expect(cfg.daemon.webhooks).toEqual([{ url: "http://127.0.0.1:9/hook", events: ["task.*"], secret: "s3cret-s3cret-s3cret" }]);
  });

  it("reports YAML syntax errors and duplicate keys as E_CONFIG", () => {
    const bad = join(dir, "bad.yml");
    writeFileSync(bad, "pool:\n  min: [1\n");
    expect(() => readConfigFile(bad)).toThrow(expect.objectContaining({ code: "E_CONFIG", message: expect.stringContaining("not valid YAML") }));
    writeFileSync(bad, "pool:\n  min: 1\n  min: 2\n");
    expect(() => readConfigFile(bad)).toThrow(expect.objectContaining({ code: "E_CONFIG" }));
  });

  it("the starter configs are valid and equal", () => {
    const yaml = validateConfig(parseYaml(STARTER_YAML));
    const json = validateConfig(JSON.parse(starterJson()));
    expect(yaml.ok && json.ok).toBe(true);
    if (yaml.ok && json.ok) expect(yaml.config).toEqual(json.config);
  });
});

describe("daemon config section", () => {
  it("has defaults and rejects a TCP listener without a token", () => {
    const cfg = parseConfig({});
    expect(cfg.daemon.rateLimits.api).toEqual({ perSecond: 50, burst: 200 });
    expect(cfg.daemon.tcp).toBeUndefined();
    const res = validateConfig({ daemon: { tcp: { port: 8940 } } });
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.issues.join("\n")).toMatch(/daemon\.tcp\.token/);
  });

  it("lists every issue with its place", () => {
    const res = validateConfig({ pool: { max: 0 }, daemon: { webhooks: [{ url: "ftp://x", events: [], secret: "short" }] } });
    expect(res.ok).toBe(false);
    if (!res.ok) {
      expect(res.issues.length).toBeGreaterThanOrEqual(4);
      expect(res.issues.some((i) => i.startsWith("daemon.webhooks.0.secret"))).toBe(true);
      expect(res.issues.some((i) => i.startsWith("pool.max"))).toBe(true);
    }
  });
});

describe("config show redaction", () => {
  it("hides tokens, webhook secrets, header values, secret env values and URL credentials", () => {
    const cfg = parseConfig({
      daemon: { tcp: { port: 1, token: "tok-tok-tok-tok-tok" }, webhooks: [{ url: "https://user:pw@hooks.example/x?token=abc&x=1", events: ["*"], secret: "hook-secret-123456" }] },
      mcp: {
        servers: {
          web: { url: "https://mcp.example/mcp", headers: { authorization: "Bearer abc", "x-custom": "v" }, allow: ["mcp.example"] },
          fs: { command: "/usr/bin/node", env: { GITHUB_TOKEN: "ghp_x", LANG: "C" } },
        },
      },
    });
    const shown = redactConfig(cfg);
    const text = JSON.stringify(shown);
    for (const secret of ["tok-tok-tok-tok-tok", "hook-secret-123456", "Bearer abc", "ghp_x", "pw@", "token=abc"]) expect(text).not.toContain(secret);
    expect(shown.daemon.tcp?.token).toBe(REDACTED);
    const web = shown.mcp.servers.web;
    expect(web?.type === "http" && web.headers["x-custom"]).toBe(REDACTED);
    const fs = shown.mcp.servers.fs;
    expect(fs?.type === "stdio" && fs.env).toEqual({ GITHUB_TOKEN: REDACTED, LANG: "C" });
    // Everything else stays as it was.
    expect(shown.pool).toEqual(cfg.pool);
    expect(shown.daemon.webhooks[0]?.url).toContain("hooks.example/x");
    expect(cfg.daemon.tcp?.token).toBe("tok-tok-tok-tok-tok");
  });
});
