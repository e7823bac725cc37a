/**
 * One remote host for partition tests: a network namespace the test creates
 * (`lgp-<tag>`), a veth to the host's namespace in 10.211.0.0/16 (a range no
 * other test file uses), and processes started inside it. The link is cut
 * with an nftables table that lives INSIDE that namespace (so the host's own
 * firewall is never touched) and drops everything on its veth: packets vanish
 * silently, as in a real partition, instead of being refused.
 *
 * Everything made here is tracked and removed by close(), also after a failed test.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";

const OCTET = 211;
const TABLE = "lgpartition";

function ip(args: string[], input?: string): void {
  execFileSync("ip", args, { input, stdio: ["pipe", "ignore", "pipe"] });
}

/** A /24 of 10.211.0.0/16 that no route of this host touches yet. */
function freeSubnet(): number {
  const routes = readFileSync("/proc/net/route", "utf8");
  const taken = new Set<number>();
  // Destination is little-endian hex: 10.211.X.0 is 00XXD30A.
  for (const m of routes.matchAll(/^\S+\s+[0-9A-F]{2}([0-9A-F]{2})D30A\s/gm)) taken.add(parseInt(m[1]!, 16));
  for (let x = 1 + Math.floor(Math.random() * 200); x < 255; x++) if (!taken.has(x)) return x;
  throw new Error("no free /24 in 10.211.0.0/16");
}

export class PartitionedHost {
  readonly netns: string;
  readonly address: string;
  private readonly outside: string;
  private readonly children: ChildProcess[] = [];
  private cutNow = false;

  private constructor(readonly tag: string) {
    this.netns = `lgp-${tag}`;
    this.outside = `lgp${tag}`;
    this.address = "";
  }

  /** Make the namespace and its link (up, reachable from the host). */
  static create(tag = Math.random().toString(36).slice(2, 8)): PartitionedHost {
    const h = new PartitionedHost(tag);
    try {
      const x = freeSubnet();
      (h as { address: string }).address = `10.${OCTET}.${x}.2`;
      ip(["netns", "add", h.netns]);
      ip(["-batch", "-"], [`link add ${h.outside} type veth peer name eth0 netns ${h.netns}`, `address add 10.${OCTET}.${x}.1/24 dev ${h.outside}`, `link set dev ${h.outside} up`].join("\n") + "\n");
      ip(["-n", h.netns, "-batch", "-"], ["link set dev lo up", `address add ${h.address}/24 dev eth0`, "link set dev eth0 up", `route add default via 10.${OCTET}.${x}.1`].join("\n") + "\n");
    } catch (err) {
      h.close();
      throw err;
    }
    return h;
  }

  /** Run `argv` inside the namespace; resolves once it prints a line matching `readyLine` (stdout or stderr). */
  async run(argv: string[], env: Record<string, string>, readyLine: RegExp): Promise<ChildProcess> {
    const child = spawn("ip", ["netns", "exec", this.netns, ...argv], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    this.children.push(child);
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${argv.join(" ")} did not start in ${this.netns}: ${err}`)), 20_000);
      const onLine = (line: string): void => {
        if (readyLine.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      };
      createInterface({ input: child.stdout! }).on("line", onLine);
      createInterface({ input: child.stderr! }).on("line", onLine);
      child.once("exit", (code) => (clearTimeout(timer), reject(new Error(`${argv.join(" ")} exited with ${code}: ${err}`))));
    });
    return child;
  }

  /** End one process started by run() (by its pid) and wait for it. */
  async stop(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await exited;
  }

  get isCut(): boolean {
    return this.cutNow;
  }

  /** Drop every packet on the namespace's veth, both ways (idempotent). */
  cut(): void {
    if (this.cutNow) return;
    const rules = `table inet ${TABLE} {
  chain in { type filter hook input priority -300; policy accept; iifname "eth0" drop; }
  chain out { type filter hook output priority -300; policy accept; oifname "eth0" drop; }
}
`;
    execFileSync("ip", ["netns", "exec", this.netns, "nft", "-f", "-"], { input: rules, stdio: ["pipe", "ignore", "pipe"] });
    this.cutNow = true;
  }

  /** Let packets through again (idempotent). */
  heal(): void {
    if (!this.cutNow) return;
    execFileSync("ip", ["netns", "exec", this.netns, "nft", "delete", "table", "inet", TABLE], { stdio: ["ignore", "ignore", "pipe"] });
    this.cutNow = false;
  }

  /** Kill what runs inside (by pid), remove the link and the namespace. Safe to call twice. */
  close(): void {
    for (const c of this.children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    if (existsSync(`/sys/class/net/${this.outside}`)) ip(["link", "delete", "dev", this.outside]);
    if (existsSync(`/run/netns/${this.netns}`)) ip(["netns", "delete", this.netns]);
  }
}
