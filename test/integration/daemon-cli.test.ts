/**
 * The bundled CLI: `config init/validate/show`, and `daemon` as a real process
 * (SIGTERM stops it and removes its socket), `daemon status`, and the webhook
 * dead-letter commands.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProcess, type Started } from "../helpers/loopback.js";
import { eventually } from "../helpers/procs.js";
import { announceSkip, namespaceSkipReason } from "../helpers/capabilities.js";

const bin = resolve(import.meta.dirname, "../../bin/luminaguard");
const run = promisify(execFile);

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(bin, args, { env: { ...process.env, ...env }, timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("luminaguard config", () => {
  let dir: string;
  let env: Record<string, string>;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "lg-cfgcli-"));
    env = { XDG_CONFIG_HOME: join(dir, "xdg"), LUMINAGUARD_STATE_DIR: join(dir, "state"), LUMINAGUARD_CONFIG: "" };
    delete (env as Partial<typeof env>).LUMINAGUARD_CONFIG;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("init writes a commented YAML starter (0600), refuses to overwrite, validate accepts it", async () => {
    const first = await cli(["config", "init", "--yaml"], env);
    expect(first.code).toBe(0);
    const path = join(dir, "xdg", "luminaguard", "config.yaml");
    expect(readFileSync(path, "utf8")).toContain("# LuminaGuard configuration");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = await cli(["config", "init", "--yaml"], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("--force");
    expect((await cli(["config", "init", "--yaml", "--force"], env)).code).toBe(0);
    // With only config.yaml present it is the default path.
    const valid = await cli(["config", "validate"], env);
    expect(valid).toMatchObject({ code: 0, stdout: `${path}: valid\n` });
  });

  it("validate lists every problem and exits 2", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ pool: { max: 0 }, daemon: { tcp: { port: 1 } } }));
    const r = await cli(["config", "validate", bad], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\d problems/);
    expect(r.stderr).toMatch(/- pool\.max: /);
    expect(r.stderr).toMatch(/- daemon\.tcp\.token: /);
  });

  it("show prints the effective config with env overrides and secrets redacted", async () => {
    const file = join(dir, "show.json");
    writeFileSync(file, JSON.stringify({ daemon: { webhooks: [{ url: "http://127.0.0.1:9/h", events: ["*"], secret: "very-secret-webhook-key" }] } }));
    const r = await cli(["config", "show", "--json", "--config", file], { ...env, LUMINAGUARD_DAEMON__TCP__PORT: "8940", LUMINAGUARD_DAEMON__TCP__TOKEN: '"0123456789abcdef0"', LUMINAGUARD_POOL__MAX: "3" });
    expect(r.code).toBe(0);
    const shown = JSON.parse(r.stdout) as { pool: { max: number }; daemon: { tcp: { port: number; token: string }; webhooks: { secret: string }[] } };
    expect(shown.pool.max).toBe(3);
    expect(shown.daemon.tcp).toMatchObject({ port: 8940, token: "[REDACTED]" });
    expect(shown.daemon.webhooks[0]!.secret).toBe("[REDACTED]");
    expect(r.stdout).not.toContain("very-secret-webhook-key");
    const yaml = await cli(["config", "show", "--config", file], env);
    expect(yaml.stdout).toMatch(/^daemon:/m);
    expect(yaml.stdout).not.toContain("very-secret-webhook-key");
  });
});

const skip = namespaceSkipReason();
announceSkip("luminaguard daemon as a process", skip);

describe.skipIf(skip)("luminaguard daemon (process)", () => {
  let dir: string;
  let proc: Started | undefined;
  afterAll(async () => {
    await proc?.stop("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs in the foreground, answers status, and SIGTERM removes its socket", async () => {
    dir = mkdtempSync(join(tmpdir(), "lg-daemoncli-"));
    const socket = join(dir, "d.sock");
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify({ pool: { min: 0, max: 2 }, audit: { path: join(dir, "audit.db") } }));
    const env = { LUMINAGUARD_STATE_DIR: join(dir, "state") };
    proc = startProcess([bin, "daemon", "--socket", socket, "--config", config], env);
    expect(await eventually(() => existsSync(socket) && proc!.stderr().includes("listening on"), 20_000, 50)).toBe(true);
    const status = await cli(["daemon", "status", "--socket", socket, "--json"], env);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: true, socket, ok: true, pid: proc.child.pid });
    await proc.stop("SIGTERM");
    expect(proc.child.exitCode).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(proc.stderr()).toContain("stopped");
    const after = await cli(["daemon", "status", "--socket", socket], env);
    expect(after.code).toBe(1);
    expect(after.stdout).toContain("No daemon is running");
    const dl = await cli(["daemon", "webhooks", "dead-letters", "--json"], env);
    expect(dl).toMatchObject({ code: 0, stdout: "[]\n" });
  });

  it("refuses --port without a token", async () => {
    const r = await cli(["daemon", "--socket", join(dir, "x.sock"), "--port", "0", "--config", join(dir, "config.json")], { LUMINAGUARD_STATE_DIR: join(dir, "state") });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("E_DAEMON_TCP_TOKEN");
  });
});
