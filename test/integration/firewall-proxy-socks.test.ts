/**
 * SOCKS5 on the proxy's port (CONNECT, no auth) and real clients: curl through
 * the HTTP proxy and through socks5h. Loopback only; curl never resolves the
 * test names itself (the proxy does, through the injected map).
 */
import { execFile } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server as HttpServer } from "node:http";
import { connect, type Server, type Socket } from "node:net";
import { promisify } from "node:util";
import { connect as tlsConnect } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Cleanup, closeServer, decisions, listen, LOOPBACK, mapResolver, readAll, readBytes, startProxy, tcpServer } from "./firewall-proxy-helpers.js";

const run = promisify(execFile);
const cleanup = new Cleanup();
const resolve = mapResolver({ "allowed.test": [LOOPBACK], "other.test": [LOOPBACK] });
let echo: Server;
let web: HttpServer;
let ports: { echo: number; web: number };

beforeAll(async () => {
  echo = tcpServer((s) => s.pipe(s));
  web = createServer((req, res) => res.end(`web saw ${req.headers.host}`));
  ports = { echo: await listen(echo), web: await listen(web) };
});

afterAll(async () => {
  await closeServer(echo);
  await closeServer(web);
});

afterEach(() => cleanup.run());

async function proxy(mode: "enforce" | "test" = "enforce") {
  const p = await startProxy(cleanup, { resolve, blockedTargets: [] });
  p.proxy.setPolicy(LOOPBACK, { sandboxId: "sb1", domains: [`allowed.test:${ports.echo}`, `allowed.test:${ports.web}`], mode });
  return p;
}

/** Open a SOCKS5 connection and send a CONNECT; resolves with the reply code and the socket. */
async function socks(
  proxyPort: number,
  dest: { name: string } | { ipv4: string },
  port: number,
  opts: { localAddress?: string; methods?: number[]; command?: number } = {},
): Promise<{ method: number; reply: number | undefined; socket: Socket }> {
  const socket = connect({ host: LOOPBACK, port: proxyPort, localAddress: opts.localAddress });
  socket.on("error", () => undefined);
  cleanup.add(() => socket.destroy());
  await once(socket, "connect");
  const methods = opts.methods ?? [0];
  socket.write(Buffer.from([5, methods.length, ...methods]));
  const m = await readBytes(socket, 2);
  if (m[1] !== 0) return { method: m[1]!, reply: undefined, socket };
  const addr = "name" in dest ? Buffer.from([3, dest.name.length, ...Buffer.from(dest.name)]) : Buffer.from([1, ...dest.ipv4.split(".").map(Number)]);
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  socket.write(Buffer.concat([Buffer.from([5, opts.command ?? 1, 0]), addr, p]));
  const r = await readBytes(socket, 10);
  // Anything after the 10-byte reply already belongs to the tunnel.
  if (r.length > 10) socket.unshift(r.subarray(10));
  return { method: 0, reply: r[1], socket };
}

describe("SOCKS5", () => {
  it("tunnels CONNECT by name to an allowed destination", async () => {
    const { port, events } = await proxy();
    const { reply, socket } = await socks(port, { name: "allowed.test" }, ports.echo);
    expect(reply).toBe(0);
    socket.write("over socks");
    expect((await readBytes(socket, 10)).toString()).toBe("over socks");
    expect(events.find((e) => e.type === "decision")).toMatchObject({ protocol: "socks5", decision: "allow", destination: `allowed.test:${ports.echo}` });
  });

  it("refuses a name, an address and an unknown client with 'not allowed by ruleset'", async () => {
    const { port, events } = await proxy();
    expect((await socks(port, { name: "other.test" }, ports.echo)).reply).toBe(2);
    expect((await socks(port, { ipv4: "127.0.0.1" }, ports.echo)).reply).toBe(2);
    expect((await socks(port, { name: "allowed.test" }, ports.echo, { localAddress: "127.0.0.2" })).reply).toBe(2);
    expect(decisions(events)).toEqual([`deny domain other.test:${ports.echo}`, `deny ip-literal 127.0.0.1:${ports.echo}`, `deny no-policy allowed.test:${ports.echo}`]);
  });

  it("refuses clients that only offer authentication, and commands other than CONNECT", async () => {
    const { port } = await proxy();
    expect((await socks(port, { name: "allowed.test" }, ports.echo, { methods: [2] })).method).toBe(0xff);
    expect((await socks(port, { name: "allowed.test" }, ports.echo, { command: 2 })).reply).toBe(7);
  });

  it("applies the TLS SNI check to SOCKS tunnels too", async () => {
    const { port, events } = await proxy();
    const { reply, socket } = await socks(port, { name: "allowed.test" }, ports.echo);
    expect(reply).toBe(0);
    const err = await new Promise<Error>((res) => {
      const t = tlsConnect({ socket, servername: "other.test", rejectUnauthorized: false });
      cleanup.add(() => t.destroy());
      t.once("error", res);
      t.once("secureConnect", () => res(new Error("unexpected handshake")));
    });
    expect(String(err)).toMatch(/access denied|alert number 49/i);
    expect(decisions(events)).toEqual([`deny sni-mismatch allowed.test:${ports.echo}`]);
  });

  it("drops a garbled SOCKS request without harm", async () => {
    const { port } = await proxy();
    const s = connect(port, LOOPBACK);
    s.on("error", () => undefined);
    cleanup.add(() => s.destroy());
    await once(s, "connect");
    s.write(Buffer.from([5, 1, 0, 5, 1, 0, 9, 9, 9, 9])); // greeting, then a request with address type 9
    const answer = await readAll(s);
    expect([...answer.subarray(0, 2)]).toEqual([5, 0]);
    expect(answer[3]).toBe(8); // the reply to the request: address type not supported
  });
});

describe("real clients (curl)", () => {
  it("curl works through the HTTP proxy and through socks5h, and gets the 403 text when refused", async (ctx) => {
    const curl = await run("curl", ["--version"]).then(
      () => true,
      () => false,
    );
    if (!curl) {
      console.log("skipped: curl is not installed");
      ctx.skip();
      return;
    }
    const { port } = await proxy();
    const base = ["-sS", "--max-time", "10", "--noproxy", ""];
    const viaHttp = await run("curl", [...base, "-x", `http://127.0.0.1:${port}`, `http://allowed.test:${ports.web}/`]);
    expect(viaHttp.stdout).toBe(`web saw allowed.test:${ports.web}`);
    const viaSocks = await run("curl", [...base, "-x", `socks5h://127.0.0.1:${port}`, `http://allowed.test:${ports.web}/`]);
    expect(viaSocks.stdout).toBe(`web saw allowed.test:${ports.web}`);
    const refused = await run("curl", [...base, "-x", `http://127.0.0.1:${port}`, "-w", "\n%{http_code}", `http://other.test:${ports.web}/`]);
    expect(refused.stdout).toContain(`"other.test" is not in this sandbox's allowed domains`);
    expect(refused.stdout.endsWith("\n403")).toBe(true);
  });
});
