/**
 * CONNECT tunnels through the egress proxy on loopback: raw bytes, TLS with a
 * matching / mismatched / absent SNI, server-first protocols, half-close, and
 * the port-443 rule (TLS only), which needs a listener on port 443 of
 * 127.0.0.3 and is skipped with a printed reason where it cannot bind there.
 */
import { once } from "node:events";
import type { Server, Socket } from "node:net";
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseClientHello } from "../../src/policy/firewall/proxy-sni.js";
import { Cleanup, closeServer, decisions, listen, LOOPBACK, mapResolver, proxyConnect, readAll, readBytes, selfSignedCert, startProxy, tcpServer, waitFor } from "./firewall-proxy-helpers.js";

const cleanup = new Cleanup();
const HOST443 = "127.0.0.3";
const resolve = mapResolver({ "allowed.test": [LOOPBACK], "other.test": [LOOPBACK], "tls443.test": [HOST443] });

let echo: Server; // echoes every byte
let banner: Server; // speaks first, then echoes
let capture: Server; // records what arrives, answers nothing
let tlsEcho: TlsServer | undefined;
let on443: Server | undefined;
let ports: { echo: number; banner: number; capture: number; tls: number };
const captured: Buffer[] = [];
let tlsSkip = "";
let skip443 = "";

beforeAll(async () => {
  echo = tcpServer((s) => s.pipe(s));
  banner = tcpServer((s) => {
    s.write("220 banner.test ready\r\n");
    s.pipe(s);
  });
  capture = tcpServer((s) => s.on("data", (c: Buffer) => captured.push(c)));
  ports = { echo: await listen(echo), banner: await listen(banner), capture: await listen(capture), tls: 0 };
  const cert = selfSignedCert("allowed.test");
  if ("skip" in cert) tlsSkip = cert.skip;
  else {
    tlsEcho = createTlsServer({ key: cert.key, cert: cert.cert }, (s) => {
      s.on("error", () => undefined);
      s.pipe(s);
    });
    ports.tls = await listen(tlsEcho);
  }
  on443 = tcpServer((s) => s.on("data", (c: Buffer) => captured.push(c)));
  try {
    await listen(on443, HOST443, 443);
  } catch (err) {
    skip443 = `cannot listen on ${HOST443}:443 (${(err as NodeJS.ErrnoException).code}): needs root or CAP_NET_BIND_SERVICE`;
    on443 = undefined;
  }
});

afterAll(async () => {
  for (const s of [echo, banner, capture, tlsEcho, on443]) if (s) await closeServer(s);
});

afterEach(async () => {
  await cleanup.run();
  captured.length = 0;
});

async function proxyFor(domains: string[], mode: "enforce" | "test" = "enforce", extra: { tlsPeekTimeoutMs?: number } = {}) {
  const p = await startProxy(cleanup, { resolve, blockedTargets: [], ...extra });
  p.proxy.setPolicy(LOOPBACK, { sandboxId: "sb1", domains, mode });
  return p;
}

async function tunnel(port: number, authority: string): Promise<Socket> {
  const c = await proxyConnect(port, authority);
  expect(c.status, c.body).toBe(200);
  cleanup.add(() => c.socket.destroy());
  // Bytes the far end sent right away may arrive with the 200: put them back in front of the stream.
  if (c.head.length > 0) c.socket.unshift(c.head);
  return c.socket;
}

/** A TLS session over an open tunnel; resolves with the TLS socket or rejects with the handshake error. */
function tlsOver(socket: Socket, servername: string | undefined, ca?: string): Promise<import("node:tls").TLSSocket> {
  return new Promise((resolve, reject) => {
    // host "127.0.0.1" without servername: Node then sends no SNI at all.
    const t = tlsConnect({ socket, host: LOOPBACK, ...(servername !== undefined ? { servername } : {}), ...(ca ? { ca } : { rejectUnauthorized: false }) });
    cleanup.add(() => t.destroy());
    t.once("secureConnect", () => resolve(t));
    t.once("error", reject);
  });
}

describe("CONNECT tunnels", () => {
  it("carries raw bytes both ways to an allowed name and port", async () => {
    const { port, proxy } = await proxyFor([`allowed.test:${ports.echo}`]);
    const s = await tunnel(port, `allowed.test:${ports.echo}`);
    s.write("ping through the tunnel");
    expect((await readBytes(s, 23)).toString()).toBe("ping through the tunnel");
    expect(proxy.stats("sb1").allowed).toEqual({ [`allowed.test:${ports.echo}`]: 1 });
  });

  it("lets a server that speaks first talk before the client sends anything", async () => {
    const { port } = await proxyFor([`allowed.test:${ports.banner}`]);
    const s = await tunnel(port, `allowed.test:${ports.banner}`);
    expect((await readBytes(s, 23)).toString()).toBe("220 banner.test ready\r\n");
  });

  it("passes a half-close through: the client's end reaches the server, the answer still comes back", async () => {
    const { port } = await proxyFor([`allowed.test:${ports.echo}`]);
    const s = await tunnel(port, `allowed.test:${ports.echo}`);
    s.end("last words");
    expect((await readAll(s)).toString()).toBe("last words");
  });

  it("refuses a CONNECT to a name or port that is not allowed, before connecting", async () => {
    const { port, events } = await proxyFor([`allowed.test:${ports.echo}`]);
    const denied = await proxyConnect(port, `other.test:${ports.capture}`);
    expect(denied.status).toBe(403);
    expect(denied.headers["x-luminaguard-denied"]).toBe("domain");
    expect(denied.body).toContain(`"other.test" is not in this sandbox's allowed domains (allowed: allowed.test:${ports.echo})`);
    const literal = await proxyConnect(port, `127.0.0.1:${ports.echo}`);
    expect(literal.headers["x-luminaguard-denied"]).toBe("ip-literal");
    expect(decisions(events)).toEqual([`deny domain other.test:${ports.capture}`, `deny ip-literal 127.0.0.1:${ports.echo}`]);
  });

  it("answers 502 when the allowed destination refuses the connection", async () => {
    const closed = tcpServer(() => undefined);
    const deadPort = await listen(closed);
    await closeServer(closed);
    const { port, events } = await proxyFor([`allowed.test:${deadPort}`]);
    const r = await proxyConnect(port, `allowed.test:${deadPort}`);
    expect(r.status).toBe(502);
    expect(r.body).toContain("refused the connection");
    expect(events.some((e) => e.type === "upstream-error" && e.status === 502)).toBe(true);
  });
});

describe("TLS server name (SNI) checks", () => {
  it("lets TLS through when the SNI is the tunnel's name (end to end with a real TLS server)", async (ctx) => {
    if (!tlsEcho) {
      console.log(`skipped: ${tlsSkip}`);
      ctx.skip();
      return;
    }
    const { port, events } = await proxyFor([`allowed.test:${ports.tls}`]);
    const s = await tunnel(port, `allowed.test:${ports.tls}`);
    const t = await tlsOver(s, "allowed.test");
    t.write("secret hello");
    expect((await readBytes(t, 12)).toString()).toBe("secret hello");
    expect(events.find((e) => e.type === "decision")).toMatchObject({ decision: "allow", reason: "listed", sni: "allowed.test" });
  });

  it("forwards the untouched ClientHello when the SNI matches", async () => {
    const { port } = await proxyFor([`allowed.test:${ports.capture}`]);
    const s = await tunnel(port, `allowed.test:${ports.capture}`);
    tlsOver(s, "allowed.test").catch(() => undefined);
    await waitFor(() => parseClientHello(Buffer.concat(captured)).status === "ok", "the ClientHello upstream");
    expect(parseClientHello(Buffer.concat(captured))).toEqual({ status: "ok", sni: "allowed.test" });
  });

  it("refuses a tunnel whose SNI names another server (domain fronting), and sends it nothing", async () => {
    const { port, proxy, events } = await proxyFor([`allowed.test:${ports.capture}`]);
    const s = await tunnel(port, `allowed.test:${ports.capture}`);
    const err = await tlsOver(s, "other.test").then(
      () => undefined,
      (e: Error) => e,
    );
    expect(String(err)).toMatch(/access denied|alert number 49/i);
    expect(captured).toHaveLength(0);
    expect(events.find((e) => e.type === "decision")).toMatchObject({ decision: "deny", reason: "sni-mismatch", sni: "other.test" });
    expect(proxy.stats("sb1").denied).toEqual({ [`allowed.test:${ports.capture}`]: 1 });
  });

  it("allows TLS without SNI and logs it as no-sni", async () => {
    const { port, events } = await proxyFor([`allowed.test:${ports.capture}`]);
    const s = await tunnel(port, `allowed.test:${ports.capture}`);
    tlsOver(s, undefined).catch(() => undefined);
    await waitFor(() => captured.length > 0, "the ClientHello upstream");
    expect(parseClientHello(Buffer.concat(captured))).toMatchObject({ status: "ok", sni: undefined });
    expect(decisions(events)).toEqual([`allow no-sni allowed.test:${ports.capture}`]);
  });

  it("in test mode lets a mismatched SNI through and records it as would-deny", async () => {
    const { port, proxy, events } = await proxyFor([`allowed.test:${ports.capture}`], "test");
    const s = await tunnel(port, `allowed.test:${ports.capture}`);
    tlsOver(s, "other.test").catch(() => undefined);
    await waitFor(() => parseClientHello(Buffer.concat(captured)).status === "ok", "the ClientHello upstream");
    expect(decisions(events)).toEqual([`would-deny sni-mismatch allowed.test:${ports.capture}`]);
    expect(proxy.stats("sb1").denied).toEqual({ [`allowed.test:${ports.capture}`]: 1 });
  });

  it("refuses a broken ClientHello with a TLS alert", async () => {
    const { port, events } = await proxyFor([`allowed.test:${ports.capture}`]);
    const s = await tunnel(port, `allowed.test:${ports.capture}`);
    s.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00]));
    const answer = await readAll(s);
    expect([...answer]).toEqual([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49]);
    expect(captured).toHaveLength(0);
    expect(decisions(events)).toEqual([`deny bad-tls allowed.test:${ports.capture}`]);
  });
});

describe("port 443 carries only TLS", () => {
  it("refuses plain text on a 443 tunnel with a readable 403, but lets a matching ClientHello through", async (ctx) => {
    if (!on443) {
      console.log(`skipped: ${skip443}`);
      ctx.skip();
      return;
    }
    const { port, events } = await proxyFor(["tls443.test"]);
    const plain = await tunnel(port, "tls443.test:443");
    plain.write("GET / HTTP/1.1\r\nHost: tls443.test\r\n\r\n");
    const answer = (await readAll(plain)).toString();
    expect(answer).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(answer).toContain("X-LuminaGuard-Denied: not-tls");
    expect(answer).toContain("port 443 carries only TLS");
    expect(captured).toHaveLength(0);

    const tls = await tunnel(port, "tls443.test:443");
    tlsOver(tls, "tls443.test").catch(() => undefined);
    await waitFor(() => captured.length > 0, "the ClientHello on port 443");
    expect(decisions(events)).toEqual(["deny not-tls tls443.test:443", "allow listed tls443.test:443"]);
  });

  it("closes a 443 tunnel that sends no ClientHello in time", async (ctx) => {
    if (!on443) {
      console.log(`skipped: ${skip443}`);
      ctx.skip();
      return;
    }
    const { port, events } = await proxyFor(["tls443.test"], "enforce", { tlsPeekTimeoutMs: 200 });
    const s = await tunnel(port, "tls443.test:443");
    s.write(Buffer.from([0x16, 0x03])); // a hello that never finishes
    await once(s, "close");
    expect(decisions(events)).toEqual(["deny tls-timeout tls443.test:443"]);
  });
});
