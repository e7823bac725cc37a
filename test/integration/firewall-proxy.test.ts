/**
 * The egress proxy over real sockets on loopback: plain HTTP forwarding,
 * policy decisions, modes, live policy changes and the DNS-rebinding guard.
 * Names resolve through an injected map to 127.0.0.1; nothing leaves the host.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Cleanup, closeServer, decisions, listen, LOOPBACK, mapResolver, proxyConnect, proxyRequest, startProxy } from "./firewall-proxy-helpers.js";

const cleanup = new Cleanup();
let upstreamA: HttpServer;
let upstreamB: HttpServer;
let portA = 0;
let portB = 0;
const seenByA: IncomingMessage[] = [];

const resolve = mapResolver({
  "allowed.test": [LOOPBACK],
  "other.test": [LOOPBACK],
  "evil.test": [LOOPBACK],
  "a.wild.test": [LOOPBACK],
});

/** Upstream A: echoes what it received (method, target, headers, body size) as JSON. */
function echoServer(): HttpServer {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    seenByA.push(req);
    let bytes = 0;
    req.on("data", (c: Buffer) => (bytes += c.length));
    req.on("end", () => {
      res.setHeader("Connection", "close, X-Upstream-Hop");
      res.setHeader("X-Upstream-Hop", "hop");
      res.setHeader("X-Upstream", "A");
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bytes }));
    });
  });
}

beforeAll(async () => {
  upstreamA = echoServer();
  upstreamB = createServer((_req, res) => res.end("B says hi"));
  portA = await listen(upstreamA);
  portB = await listen(upstreamB);
});

afterAll(async () => {
  await closeServer(upstreamA);
  await closeServer(upstreamB);
});

afterEach(async () => {
  await cleanup.run();
  seenByA.length = 0;
});

async function proxyWith(domains: string[], mode: "enforce" | "test" | "disabled" = "enforce") {
  const p = await startProxy(cleanup, { resolve, blockedTargets: [] });
  p.proxy.setPolicy(LOOPBACK, { sandboxId: "sb1", domains, mode });
  return p;
}

describe("plain HTTP through the proxy", () => {
  it("forwards to an allowed name with the body, clean headers and Host set to the checked name", async () => {
    const { port, proxy, events } = await proxyWith([`allowed.test:${portA}`]);
    const r = await proxyRequest(port, `http://Allowed.Test.:${portA}/echo/../x?q=1`, {
      method: "POST",
      headers: {
        Host: "evil.test",
        "Proxy-Authorization": "Basic c2VjcmV0",
        "Proxy-Connection": "keep-alive",
        Connection: "X-Hop",
        "X-Hop": "1",
        "X-Keep": "yes",
        "Transfer-Encoding": "chunked",
      },
      body: "x".repeat(100_000),
    });
    expect(r.status).toBe(200);
    expect(r.headers["x-upstream"]).toBe("A");
    expect(r.headers["x-upstream-hop"]).toBeUndefined();
    const seen = JSON.parse(r.body) as { method: string; url: string; headers: Record<string, string>; bytes: number };
    expect(seen).toMatchObject({ method: "POST", url: "/echo/../x?q=1", bytes: 100_000 });
    expect(seen.headers.host).toBe(`allowed.test:${portA}`);
    expect(seen.headers["x-keep"]).toBe("yes");
    for (const h of ["proxy-authorization", "proxy-connection", "x-hop"]) expect(seen.headers[h], h).toBeUndefined();
    expect(proxy.stats("sb1")).toEqual({ allowed: { [`allowed.test:${portA}`]: 1 }, denied: {} });
    expect(decisions(events)).toEqual([`allow listed allowed.test:${portA}`]);
  });

  it("refuses a name that is not allowed with a 403 the agent can read, and never contacts it", async () => {
    const { port, proxy, events } = await proxyWith([`allowed.test:${portA}`, "*.example.org"]);
    const r = await proxyRequest(port, `http://evil.test:${portA}/steal`);
    expect(r.status).toBe(403);
    expect(r.headers["x-luminaguard-denied"]).toBe("domain");
    expect(r.headers["content-type"]).toMatch(/^text\/plain/);
    expect(r.body).toBe(`LuminaGuard egress proxy: "evil.test" is not in this sandbox's allowed domains (allowed: allowed.test:${portA}, *.example.org)\n`);
    expect(seenByA).toHaveLength(0);
    expect(proxy.stats("sb1").denied).toEqual({ [`evil.test:${portA}`]: 1 });
    expect(events.find((e) => e.type === "decision")).toMatchObject({ decision: "deny", reason: "domain", sandboxId: "sb1", client: LOOPBACK, protocol: "http" });
  });

  it("refuses another port of an allowed name, and IP literals", async () => {
    const { port } = await proxyWith([`allowed.test:${portA}`]);
    const wrongPort = await proxyRequest(port, `http://allowed.test:${portB}/`);
    expect(wrongPort.status).toBe(403);
    expect(wrongPort.headers["x-luminaguard-denied"]).toBe("port");
    expect(wrongPort.body).toContain(`allowed only on port ${portA}, not ${portB}`);
    const literal = await proxyRequest(port, `http://127.0.0.1:${portA}/`);
    expect(literal.status).toBe(403);
    expect(literal.headers["x-luminaguard-denied"]).toBe("ip-literal");
    expect(seenByA).toHaveLength(0);
  });

  it("matches wildcards through the proxy", async () => {
    const { port } = await proxyWith([`*.wild.test:${portB}`]);
    expect((await proxyRequest(port, `http://a.wild.test:${portB}/`)).body).toBe("B says hi");
    expect((await proxyRequest(port, `http://wild.test:${portB}/`)).status).toBe(403);
  });

  it("refuses a client address that has no policy", async () => {
    const { port, events } = await proxyWith([`allowed.test:${portA}`]);
    // 127.0.0.2 is another loopback address: a different "sandbox" to the proxy.
    const r = await proxyRequest(port, `http://allowed.test:${portA}/`, { localAddress: "127.0.0.2" });
    expect(r.status).toBe(403);
    expect(r.headers["x-luminaguard-denied"]).toBe("client");
    expect(r.body).toContain("this client (127.0.0.2) has no egress policy");
    const c = await proxyConnect(port, `allowed.test:${portA}`, { localAddress: "127.0.0.2" });
    expect(c.status).toBe(403);
    expect(c.body).toContain("no egress policy");
    expect(seenByA).toHaveLength(0);
    expect(decisions(events)).toEqual([`deny no-policy allowed.test:${portA}`, `deny no-policy allowed.test:${portA}`]);
  });
});

describe("modes and live policy changes", () => {
  it("test mode lets a denied name through and counts it as denied", async () => {
    const { port, proxy, events } = await proxyWith([`allowed.test:${portA}`], "test");
    const r = await proxyRequest(port, `http://evil.test:${portA}/`);
    expect(r.status).toBe(200);
    expect(seenByA).toHaveLength(1);
    await proxyRequest(port, `http://allowed.test:${portA}/`);
    expect(proxy.stats("sb1")).toEqual({ allowed: { [`allowed.test:${portA}`]: 1 }, denied: { [`evil.test:${portA}`]: 1 } });
    const first = events.find((e) => e.type === "decision");
    expect(first).toMatchObject({ decision: "would-deny", reason: "domain", mode: "test" });
    expect(first?.type === "decision" && first.detail).toContain('"evil.test" is not in this sandbox');
  });

  it("disabled mode allows anything (IP literals included) and logs it", async () => {
    const { port, proxy, events } = await proxyWith([], "disabled");
    expect((await proxyRequest(port, `http://other.test:${portB}/`)).body).toBe("B says hi");
    expect((await proxyRequest(port, `http://127.0.0.1:${portB}/`)).body).toBe("B says hi");
    expect(decisions(events)).toEqual([`allow disabled other.test:${portB}`, `allow disabled 127.0.0.1:${portB}`]);
    expect(proxy.stats().allowed).toEqual({ [`other.test:${portB}`]: 1, [`127.0.0.1:${portB}`]: 1 });
  });

  it("applies setPolicy to the next request, without a restart", async () => {
    const { port, proxy } = await proxyWith([`allowed.test:${portA}`]);
    expect((await proxyRequest(port, `http://other.test:${portB}/`)).status).toBe(403);
    proxy.setPolicy(LOOPBACK, { sandboxId: "sb1", domains: [`allowed.test:${portA}`, `other.test:${portB}`], mode: "enforce" });
    expect((await proxyRequest(port, `http://other.test:${portB}/`)).status).toBe(200);
    proxy.setPolicy(LOOPBACK, undefined);
    const r = await proxyRequest(port, `http://other.test:${portB}/`);
    expect(r.status).toBe(403);
    expect(r.headers["x-luminaguard-denied"]).toBe("client");
    expect(proxy.stats("sb1")).toEqual({ allowed: { [`other.test:${portB}`]: 1 }, denied: { [`other.test:${portB}`]: 1 } });
  });

  it("keeps per-sandbox counters apart and sums them on request", async () => {
    const { port, proxy } = await proxyWith([`allowed.test:${portA}`]);
    proxy.setPolicy("127.0.0.2", { sandboxId: "sb2", domains: [`other.test:${portB}`], mode: "enforce" });
    await proxyRequest(port, `http://allowed.test:${portA}/`);
    await proxyRequest(port, `http://other.test:${portB}/`, { localAddress: "127.0.0.2" });
    await proxyRequest(port, `http://allowed.test:${portA}/`, { localAddress: "127.0.0.2" });
    expect(proxy.stats("sb2")).toEqual({ allowed: { [`other.test:${portB}`]: 1 }, denied: { [`allowed.test:${portA}`]: 1 } });
    expect(proxy.stats()).toEqual({ allowed: { [`allowed.test:${portA}`]: 1, [`other.test:${portB}`]: 1 }, denied: { [`allowed.test:${portA}`]: 1 } });
    proxy.forgetStats("sb2");
    expect(proxy.stats("sb2")).toEqual({ allowed: {}, denied: {} });
  });
});

describe("DNS rebinding guard", () => {
  it("refuses an allowed name that resolves to loopback, in every mode, with the default blocked targets", async () => {
    const { port, proxy, events } = await startProxy(cleanup, { resolve });
    for (const mode of ["enforce", "test", "disabled"] as const) {
      proxy.setPolicy(LOOPBACK, { sandboxId: "sb1", domains: [`allowed.test:${portA}`], mode });
      const r = await proxyRequest(port, `http://allowed.test:${portA}/`);
      expect(r.status, mode).toBe(403);
      expect(r.headers["x-luminaguard-denied"]).toBe("address");
      expect(r.body).toContain('"allowed.test" resolves to 127.0.0.1, which the proxy never connects to');
      const c = await proxyConnect(port, `allowed.test:${portA}`);
      expect(c.status, mode).toBe(403);
    }
    expect(seenByA).toHaveLength(0);
    expect(decisions(events).every((d) => d.startsWith("deny address"))).toBe(true);
    expect(proxy.stats("sb1").denied).toEqual({ [`allowed.test:${portA}`]: 6 });
  });

  it("connects to the first address that is not blocked when a name has several", async () => {
    const mixed = mapResolver({ "allowed.test": ["169.254.169.254", "::1", "127.0.0.1"] });
    const { port, proxy } = await startProxy(cleanup, { resolve: mixed, blockedTargets: ["169.254.0.0/16", "::1/128"] });
    proxy.setPolicy(LOOPBACK, { sandboxId: "sb1", domains: [`allowed.test:${portB}`], mode: "enforce" });
    expect((await proxyRequest(port, `http://allowed.test:${portB}/`)).body).toBe("B says hi");
  });
});
