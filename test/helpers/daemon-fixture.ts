/**
 * A `luminaguard daemon` process for CLI tests: a temp folder (runtime, state,
 * a workspace the sandbox user can write), the real filesystem MCP server, one
 * config file that the daemon and every CLI call share (daemon.socket is how
 * the CLI finds the daemon), and a start that waits until the daemon listens.
 */
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bin, cleanEnv } from "./cli-processes.js";
import { startProcess, type Started } from "./loopback.js";
import { stageMcpServers, type StagedServers } from "./mcp-servers.js";
import { eventually } from "./procs.js";

export class DaemonFixture {
  readonly socket: string;
  readonly cfg: string;
  readonly env: Record<string, string>;
  private readonly daemons: Started[] = [];

  private constructor(
    readonly dir: string,
    readonly staged: StagedServers,
  ) {
    this.socket = join(dir, "d.sock");
    this.cfg = join(dir, "config.json");
    this.env = { LUMINAGUARD_RUNTIME_DIR: join(dir, "runtime"), LUMINAGUARD_STATE_DIR: join(dir, "state") };
  }

  /**
   * Make the folder and the config. `extra` sections are merged in one level deep, e.g.
   * { agent: { provider: "replay" } }, or { daemon: { rateLimits } } (which keeps daemon.socket).
   */
  static async create(prefix: string, extra: Record<string, unknown> = {}): Promise<DaemonFixture> {
    const staged = await stageMcpServers(["filesystem"]);
    const dir = await mkdtemp(join(tmpdir(), prefix));
    await chmod(dir, 0o755);
    await mkdir(join(dir, "runtime"), { mode: 0o755 });
    await mkdir(join(dir, "ws"), { mode: 0o777 });
    await chmod(join(dir, "ws"), 0o777);
    const f = new DaemonFixture(dir, staged);
    const config: Record<string, unknown> = {
      mcp: { servers: { fs: { command: staged.node, args: ["/opt/mcp/filesystem.mjs", "/workspace"], sandbox: { mounts: [staged.mount], workspace: join(dir, "ws") } } } },
      approval: { approver: "api" },
      pool: { min: 0, max: 2 },
      audit: { path: f.auditPath },
      daemon: { socket: f.socket },
    };
    for (const [key, section] of Object.entries(extra)) config[key] = isObject(config[key]) && isObject(section) ? { ...config[key], ...section } : section;
    await writeFile(f.cfg, JSON.stringify(config));
    return f;
  }

  get auditPath(): string {
    return join(this.dir, "state", "audit.db");
  }

  /** A path in the sandbox's workspace folder on the host. */
  ws(name: string): string {
    return join(this.dir, "ws", name);
  }

  /**
   * Start a daemon on this config (`env` on top of the fixture's, e.g. NODE_OPTIONS) and wait
   * until it listens with the fs server ready; throws with its stderr otherwise.
   */
  async start(waitMs = 45_000, env: Record<string, string> = {}): Promise<Started> {
    const d = startProcess([bin, "daemon", "--config", this.cfg], cleanEnv({ ...this.env, ...env }));
    this.daemons.push(d);
    const up = await eventually(() => existsSync(this.socket) && d.stderr().includes("listening on"), waitMs, 50);
    if (!up || !/MCP server fs: ready/.test(d.stderr())) throw new Error(`the daemon did not come up:\n${d.stderr()}`);
    return d;
  }

  /** Stop every daemon started here (by pid) and remove the folder. */
  async cleanup(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    for (const d of this.daemons) await d.stop(signal);
    await this.staged.cleanup();
    await rm(this.dir, { recursive: true, force: true });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
