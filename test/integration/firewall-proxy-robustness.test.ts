/**
 * The egress proxy against bad input and bad days, on loopback: garbage bytes,
 * oversized heads, too many connections, slow or missing upstreams, a busy
 * port, and close() leaving nothing open.
 */
import { once } from "node:events";
import { createServer, type Server as HttpServer } from "node:http";
import { connect, type Server, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hasCode } from "../../src/errors.js";
import { EgressProxy } from "../../src/policy/firewall/proxy.js";
import { Cleanup, closeServer, listen, LOOPBACK, mapResolver, proxyConnect, proxyRequest, readAll, readBytes, startProxy, tcpServer, waitFor } from "./firewall-proxy-helpers.js";

const cleanup = new Cleanup();
const resolve = mapResolver({ "allowed.test": [LOOPBACK], "slow.test": "hang", "silent.test": [LOOPBACK] });
let web: HttpServer;
let silent: Server; // accepts, never answers
let echo: Server;
let ports: { web: number; silent: number; echo: number };

beforeAll(async () => {
  web = createServer((_req, res) => res.end("ok"));
  silent = tcpServer(() => undefined);
  echo = tcpServer((s) => s.pipe(s));
  ports = { web: await listen(web), silent: await listen(silent), echo: await listen(echo) };
});

afterAll(async () => {
  for (const s of [web, silent, echo]) await closeServer(s);
});

afterEach(() => cleanup.run());

async function proxy(opts: Parameters<typeof startProxy>[1] = {}) {
  const p = await startProxy(cleanup, { resolve, blockedTargets: [], ...opts });
  p.proxy.setPolicy(LOOPBACK, { sandboxId: "sb1", domains: [`allowed.test:${ports.web}`, `allowed.test:${ports.echo}`, `slow.test:${ports.web}`, `silent.test:${ports.silent}`], mode: "enforce" });
  return p;
}

/** Send raw bytes to the proxy and return everything it answers before closing. */
async function raw(port: number, bytes: string | Buffer): Promise<string> {
  const s = connect(port, LOOPBACK);
  cleanup.add(() => s.destroy());
  await once(s, "connect");
  s.write(bytes);
  return (await readAll(s)).toString();
}

describe("bad input", () => {
  it("answers garbage with 400 and keeps serving", async () => {
    const { port, events } = await proxy();
    expect(await raw(port, Buffer.concat([Buffer.from([0, 1, 2, 0xff, 0xfe]), Buffer.from("\r\n\r\n")]))).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(await raw(port, "GET http://allowed.test/ HTTP/9.9\r\n\r\n")).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw(port, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")).toMatch(/^HTTP\/1\.1 400/);
    expect(events.filter((e) => e.type === "client-error").length).toBeGreaterThanOrEqual(3);
    expect((await proxyRequest(port, `http://allowed.test:${ports.web}/`)).body).toBe("ok");
  });

  it("answers a head over 16 KiB with 431", async () => {
    const { port } = await proxy();
    const answer = await raw(port, `GET http://allowed.test:${ports.web}/ HTTP/1.1\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
  });

  it("explains origin-form requests, https:// URIs, CONNECT without a port and upgrades", async () => {
    const { port } = await proxy();
    const origin = await proxyRequest(port, "/index.html");
    expect(origin.status).toBe(400);
    expect(origin.body).toContain('send the full URL ("GET http://host/path") or use CONNECT');
    expect((await proxyRequest(port, "https://allowed.test/")).body).toContain("through CONNECT");
    const noPort = await proxyConnect(port, "allowed.test");
    expect(noPort.status).toBe(400);
    expect(noPort.body).toContain("CONNECT needs host:port");
    expect(await raw(port, `GET http://allowed.test:${ports.web}/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`)).toMatch(/^HTTP\/1\.1 501 /);
  });

  it("survives a logger that throws", async () => {
    const { port } = await startProxy(cleanup, {
      resolve,
      blockedTargets: [],
      log: () => {
        throw new Error("logger down");
      },
    });
    expect((await proxyRequest(port, `http://allowed.test:${ports.web}/`)).status).toBe(403);
  });
});

describe("limits and failures", () => {
  it("caps open connections per client with a 429 and frees the slot on close", async () => {
    const { port, events } = await proxy({ maxConnectionsPerClient: 2 });
    const held: Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const s = connect(port, LOOPBACK);
      cleanup.add(() => s.destroy());
      await once(s, "connect");
      held.push(s);
    }
    // Connections are counted when the proxy accepts them: make sure both are in before the third.
    await new Promise((r) => setTimeout(r, 50));
    expect(await raw(port, "GET http://allowed.test/ HTTP/1.1\r\n\r\n")).toMatch(/^HTTP\/1\.1 429 Too Many Requests[\s\S]*already has 2 open connections/);
    expect(events.some((e) => e.type === "connection-limit")).toBe(true);
    // Another client address has its own budget.
    expect((await proxyRequest(port, `http://allowed.test:${ports.web}/`, { localAddress: "127.0.0.2" })).status).toBe(403);
    held[0]!.destroy();
    await waitFor(() => held[0]!.destroyed, "the close");
    await new Promise((r) => setTimeout(r, 50));
    expect((await proxyRequest(port, `http://allowed.test:${ports.web}/`)).body).toBe("ok");
  });

  it("answers 504 when resolving takes too long and 502 when a name does not resolve", async () => {
    const { port, proxy: px, events } = await startProxy(cleanup, { resolve, blockedTargets: [], connectTimeoutMs: 200 });
    px.setPolicy(LOOPBACK, { sandboxId: "sb1", domains: [`slow.test:${ports.web}`, `nowhere.test:${ports.web}`], mode: "enforce" });
    const slow = await proxyRequest(port, `http://slow.test:${ports.web}/`);
    expect(slow.status).toBe(504);
    expect(slow.body).toContain('resolving "slow.test" timed out after 200 ms');
    const missing = await proxyRequest(port, `http://nowhere.test:${ports.web}/`);
    expect(missing.status).toBe(502);
    expect(missing.body).toContain('could not resolve "nowhere.test" (no such name)');
    expect(events.flatMap((e) => (e.type === "upstream-error" ? [e.status] : []))).toEqual([504, 502]);
    // Allowed by policy, failed upstream: counted as allowed attempts.
    expect(px.stats("sb1").allowed).toEqual({ [`slow.test:${ports.web}`]: 1, [`nowhere.test:${ports.web}`]: 1 });
  });

  it("answers 504 when the upstream accepts but never answers (idle timeout)", async () => {
    const { port, events } = await proxy({ idleTimeoutMs: 300 });
    const r = await proxyRequest(port, `http://silent.test:${ports.silent}/`);
    expect(r.status).toBe(504);
    expect(r.body).toContain("sent no response within 300 ms");
    expect(events.some((e) => e.type === "upstream-error" && e.status === 504)).toBe(true);
  });

  it("closes an idle tunnel after idleTimeoutMs", async () => {
    const { port } = await proxy({ idleTimeoutMs: 300 });
    const c = await proxyConnect(port, `allowed.test:${ports.echo}`);
    cleanup.add(() => c.socket.destroy());
    c.socket.write("x");
    expect((await readBytes(c.socket, 1)).toString()).toBe("x");
    const t0 = Date.now();
    await once(c.socket, "close");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });
});

describe("lifecycle", () => {
  it("fails to start on a busy port with E_FIREWALL_PROXY and a hint, and listens nowhere", async () => {
    const busy = tcpServer(() => undefined);
    const busyPort = await listen(busy);
    cleanup.add(() => closeServer(busy));
    const px = new EgressProxy({ listen: [{ host: LOOPBACK, port: 0 }, { host: LOOPBACK, port: busyPort }] });
    const err = await px.start().then(() => undefined, (e: unknown) => e);
    expect(hasCode(err, "E_FIREWALL_PROXY")).toBe(true);
    expect((err as Error).message).toContain(`cannot listen on 127.0.0.1:${busyPort}: the address is already in use`);
    expect(px.addresses()).toEqual([]);
    await px.close();
    await expect(px.start()).rejects.toThrow(/closed/);
  });

  it("close() destroys open tunnels and connections, leaves no handle behind, and can be called twice", async () => {
    const tcpHandles = () => process.getActiveResourcesInfo().filter((r) => r.startsWith("TCP")).length;
    // Sockets of earlier tests may still be closing: take the baseline once the count holds still.
    let before = tcpHandles();
    for (let still = 0; still < 10; ) {
      await new Promise((r) => setTimeout(r, 20));
      const now = tcpHandles();
      still = now === before ? still + 1 : 0;
      before = now;
    }
    const px = new EgressProxy({ listen: [{ host: LOOPBACK, port: 0 }], resolve, blockedTargets: [] });
    await px.start();
    px.setPolicy(LOOPBACK, { sandboxId: "sb1", domains: [`allowed.test:${ports.echo}`, `allowed.test:${ports.web}`], mode: "enforce" });
    const port = px.addresses()[0]!.port;
    const t = await proxyConnect(port, `allowed.test:${ports.echo}`);
    t.socket.on("error", () => undefined); // close() may reset connections: that is the point
    t.socket.write("x");
    await readBytes(t.socket, 1);
    const idle = connect(port, LOOPBACK).on("error", () => undefined);
    await once(idle, "connect");
    const pending = connect(port, LOOPBACK).on("error", () => undefined);
    await once(pending, "connect");
    pending.write(`GET http://allowed.test:${ports.web}/ HTTP/1.1\r\nHost: x\r\n`); // an unfinished head
    expect(tcpHandles()).toBeGreaterThan(before);

    await Promise.all([px.close(), px.close()]);
    // events.once would reject on the resets close() causes; only the close matters here.
    const closed = (s: Socket) => new Promise((r) => (s.destroyed ? r(undefined) : s.once("close", r)));
    await Promise.all([closed(t.socket), closed(idle), closed(pending)]);
    await waitFor(() => tcpHandles() === before, `TCP handles back to ${before}`);
    await expect(new Promise((res, rej) => connect(port, LOOPBACK).on("connect", res).on("error", rej))).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});

describe("listeners per sandbox", () => {
  it("adds and removes listeners at run time; removing one ends its connections", async () => {
    const px = new EgressProxy({ listen: [], resolve, blockedTargets: [] });
    cleanup.add(() => px.close());
    await px.addListener("127.0.0.5", 0); // before start: taken up by start()
    await px.start();
    px.setPolicy(LOOPBACK, { sandboxId: "sb1", domains: [`allowed.test:${ports.echo}`], mode: "enforce" });
    expect(px.addresses()).toEqual([{ host: "127.0.0.5", port: expect.any(Number) as number }]);
    await px.addListener(LOOPBACK, 0);
    const onLoopback = px.addresses().find((a) => a.host === LOOPBACK)!;
    await px.addListener(LOOPBACK, onLoopback.port); // already there: nothing happens
    expect(px.addresses()).toHaveLength(2);

    const t = await proxyConnect(onLoopback.port, `allowed.test:${ports.echo}`);
    t.socket.on("error", () => undefined);
    t.socket.write("x");
    expect((await readBytes(t.socket, 1)).toString()).toBe("x");
    const closed = new Promise((r) => t.socket.once("close", r));
    await px.removeListener(LOOPBACK, onLoopback.port);
    await closed;
    expect(px.addresses()).toEqual([{ host: "127.0.0.5", port: expect.any(Number) as number }]);
    await expect(proxyRequest(onLoopback.port, `http://allowed.test:${ports.web}/`)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await px.removeListener(LOOPBACK, onLoopback.port); // gone already: nothing happens
  });
});
