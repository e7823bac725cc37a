/**
 * A tiny "internet" for firewall tests: test hosts, each in a network
 * namespace the test creates (`lgt-<tag><letter>`) with a veth to the host's
 * namespace and a /24 in 10.204.0.0/16 (or another 10.N.0.0/16 a test file
 * picks, so files running in parallel never share one), running echo servers; and a prober, a
 * Node process inside a sandbox's namespace that makes connections on request.
 *
 * Traffic only ever goes to these namespaces or to loopback. Everything made
 * here is tracked and removed by close(), also after a failed test.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";

/** One test host: its namespace, the address its servers answer on, and the host-side address of its link. */
export interface TestHost {
  name: string;
  netns: string;
  address: string;
  gateway: string;
  tcpPorts: number[];
  udpPorts: number[];
}

// Replies are "<host name>:<what was sent>", so a test sees which host answered.
const SERVER = `
const net = require("node:net"), dgram = require("node:dgram");
const [name, tcp, udp] = JSON.parse(process.argv[1]);
let pending = tcp.length + udp.length;
const ready = () => { if (--pending === 0) console.log("ready"); };
for (const p of tcp) net.createServer((s) => { s.on("error", () => {}); s.on("data", (d) => s.end(name + ":" + d.toString().trim())); }).listen(p, "0.0.0.0", ready);
for (const p of udp) { const u = dgram.createSocket("udp4"); u.on("message", (m, r) => u.send(name + ":" + m.toString().trim(), r.port, r.address)); u.bind(p, "0.0.0.0", ready); }
`;

const PROBER = `
const net = require("node:net"), dgram = require("node:dgram");
const out = (id, result) => process.stdout.write(JSON.stringify({ id, result }) + "\\n");
require("node:readline").createInterface({ input: process.stdin }).on("line", (line) => {
  const q = JSON.parse(line);
  let finished = false;
  const done = (r) => { if (!finished) { finished = true; out(q.id, r); } };
  if (q.kind === "listen") {
    net.createServer((s) => { s.on("error", () => {}); s.on("data", (d) => s.end("sandbox:" + d.toString().trim())); }).listen(q.port, "0.0.0.0", () => done("listening"));
  } else if (q.kind === "tcp") {
    const s = net.connect({ host: q.host, port: q.port });
    const t = setTimeout(() => { s.destroy(); done("timeout"); }, q.timeoutMs);
    s.on("connect", () => s.write("ping\\n"));
    s.on("data", (d) => { clearTimeout(t); s.destroy(); done("ok:" + d.toString().trim()); });
    s.on("error", (e) => { clearTimeout(t); done(e.code === "ECONNREFUSED" ? "refused" : "error:" + e.code); });
  } else {
    const u = dgram.createSocket("udp4");
    const t = setTimeout(() => { u.close(); done("timeout"); }, q.timeoutMs);
    u.on("message", (m) => { clearTimeout(t); u.close(); done("ok:" + m.toString()); });
    u.on("error", (e) => { clearTimeout(t); u.close(); done("error:" + e.code); });
    u.send("ping", q.port, q.host);
  }
});
console.log(JSON.stringify({ id: 0, result: "ready" }));
`;

function ip(args: string[], input?: string): void {
  execFileSync("ip", args, { input, stdio: ["pipe", "ignore", "pipe"] });
}

/** /24s of 10.<octet>.0.0/16 that no route of this host touches yet. */
function freeTestSubnets(count: number, octet: number): number[] {
  const routes = readFileSync("/proc/net/route", "utf8");
  const taken = new Set<number>();
  // Destination is little-endian hex: 10.204.X.0 is 00XCC0A.
  const second = octet.toString(16).toUpperCase().padStart(2, "0");
  for (const m of routes.matchAll(new RegExp(`^\\S+\\s+([0-9A-F]{2})([0-9A-F]{2})${second}0A\\s`, "gm"))) taken.add(parseInt(m[2]!, 16));
  const free: number[] = [];
  for (let x = 1 + Math.floor(Math.random() * 200); free.length < count && x < 255; x++) if (!taken.has(x)) free.push(x);
  return free;
}

export class TestInternet {
  readonly hosts: TestHost[] = [];
  private readonly children: ChildProcess[] = [];

  private constructor(
    readonly tag: string,
    readonly octet: number,
  ) {}

  /** Hosts "a", "b", … each with TCP echo servers on `tcpPorts` and UDP echo servers on `udpPorts`, in 10.<octet>.0.0/16 (default 204). */
  static async create(tag: string, specs: { name: string; tcpPorts: number[]; udpPorts: number[] }[], opts: { octet?: number } = {}): Promise<TestInternet> {
    const net = new TestInternet(tag, opts.octet ?? 204);
    try {
      const subnets = freeTestSubnets(specs.length, net.octet);
      for (const [i, spec] of specs.entries()) await net.addHost(spec, subnets[i]!);
    } catch (err) {
      net.close();
      throw err;
    }
    return net;
  }

  host(name: string): TestHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no test host ${name}`);
    return h;
  }

  private async addHost(spec: { name: string; tcpPorts: number[]; udpPorts: number[] }, x: number): Promise<void> {
    const netns = `lgt-${this.tag}${spec.name}`;
    const outside = `lgt${this.tag}${spec.name}`;
    const host: TestHost = { ...spec, netns, address: `10.${this.octet}.${x}.2`, gateway: `10.${this.octet}.${x}.1` };
    this.hosts.push(host);
    ip(["netns", "add", netns]);
    ip(
      ["-batch", "-"],
      [`link add ${outside} type veth peer name eth0 netns ${netns}`, `address add ${host.gateway}/24 dev ${outside}`, `link set dev ${outside} up`].join("\n") + "\n",
    );
    ip(["-n", netns, "-batch", "-"], ["link set dev lo up", `address add ${host.address}/24 dev eth0`, "link set dev eth0 up", `route add default via ${host.gateway}`].join("\n") + "\n");
    const child = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", SERVER, JSON.stringify([spec.name, spec.tcpPorts, spec.udpPorts])], { stdio: ["ignore", "pipe", "pipe"] });
    this.children.push(child);
    await waitForLine(child, "ready", `test host ${spec.name}`);
  }

  /** Kill the servers and remove every namespace and link made here. Safe to call twice. */
  close(): void {
    for (const c of this.children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const h of this.hosts.splice(0)) {
      const outside = `lgt${this.tag}${h.name}`;
      if (existsSync(`/sys/class/net/${outside}`)) ip(["link", "delete", "dev", outside]);
      if (existsSync(`/run/netns/${h.netns}`)) ip(["netns", "delete", h.netns]);
    }
  }
}

export type ProbeResult = "timeout" | "refused" | `ok:${string}` | `error:${string}` | "listening";

/** A Node process inside a network namespace that connects where it is told. */
export class Prober {
  private seq = 0;
  private readonly waiting = new Map<number, (r: ProbeResult) => void>();

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const { id, result } = JSON.parse(line) as { id: number; result: ProbeResult };
      this.waiting.get(id)?.(result);
      this.waiting.delete(id);
    });
  }

  /** Start one inside the namespace at `netnsPath` (as the backend will: nsenter --net). */
  static async start(netnsPath: string): Promise<Prober> {
    const child = spawn("nsenter", [`--net=${netnsPath}`, process.execPath, "-e", PROBER], { stdio: ["pipe", "pipe", "pipe"] });
    const p = new Prober(child);
    await new Promise<void>((resolve, reject) => {
      p.waiting.set(0, () => resolve());
      child.on("error", reject);
      child.on("exit", (code) => reject(new Error(`prober exited with ${code}`)));
    });
    return p;
  }

  tcp(host: string, port: number, timeoutMs = 1000): Promise<ProbeResult> {
    return this.ask({ kind: "tcp", host, port, timeoutMs });
  }

  udp(host: string, port: number, timeoutMs = 1000): Promise<ProbeResult> {
    return this.ask({ kind: "udp", host, port, timeoutMs });
  }

  /** Run a TCP echo server inside the namespace. */
  listen(port: number): Promise<ProbeResult> {
    return this.ask({ kind: "listen", port });
  }

  close(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }

  private ask(q: Record<string, unknown>): Promise<ProbeResult> {
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.stdin!.write(JSON.stringify({ id, ...q }) + "\n");
    });
  }
}

function waitForLine(child: ChildProcess, want: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${err}`)), 10_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.trim() === want) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", (code) => reject(new Error(`${what} exited with ${code}: ${err}`)));
  });
}

/** Names of network namespaces that exist now. */
export function netnsNames(): string[] {
  try {
    return readdirSync("/run/netns");
  } catch {
    return [];
  }
}
