/**
 * The kernel relay (lg-relay, splice(2)) behind the egress proxy, on loopback:
 * a tunnel that crosses the hand-off threshold delivers exactly the bytes sent
 * both ways, keeps half-close in both directions, ends when the far end or the
 * client goes (cleanly or by reset), leaves no relay process behind, and counts
 * its bytes; without the binary the Node relay carries the same traffic. The
 * relay is compiled from its source into a temporary folder (skipped, with the
 * reason, where gcc is missing).
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { findRelay, RELAY_BINARY } from "../../src/policy/firewall/proxy-relay.js";
import type { RelayOptions } from "../../src/policy/firewall/proxy.js";
import { Cleanup, closeServer, listen, LOOPBACK, mapResolver, readBytes, startProxy, waitFor } from "./firewall-proxy-helpers.js";

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), "../../src/policy/firewall/relay/lg-relay.c");
const MB = 1024 * 1024;
const THRESHOLD = 256 * 1024;
const cleanup = new Cleanup();
const dir = mkdtempSync(join(tmpdir(), "lg-relay-test-"));
let relayPath = "";
let skip = "";

// The far end: every accepted socket is handed to the test, half-open allowed.
let far: Server;
let farPort = 0;
const accepted: Socket[] = [];

beforeAll(async () => {
  try {
    relayPath = join(dir, "lg-relay");
    execFileSync("gcc", ["-O2", "-Wall", "-Wextra", "-Werror", "-o", relayPath, SOURCE], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    skip = `gcc could not compile ${SOURCE} (${(err as Error).message.split("\n")[0]}); the kernel relay is not tested`;
  }
  far = createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => undefined);
    accepted.push(s);
  });
  farPort = await listen(far);
});

afterAll(async () => {
  await closeServer(far);
  rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await cleanup.run();
  for (const s of accepted.splice(0)) s.destroy();
});

/** A proxy with the relay at `path` (default: the one compiled here), allowing relay.test. */
async function proxyWith(relay: RelayOptions = {}, extra: { idleTimeoutMs?: number } = {}) {
  const p = await startProxy(cleanup, { resolve: mapResolver({ "relay.test": [LOOPBACK] }), blockedTargets: [], relay: { path: relayPath, ...relay }, ...extra });
  p.proxy.setPolicy(LOOPBACK, { sandboxId: "sb1", domains: [`relay.test:${farPort}`], mode: "enforce" });
  return p;
}

/** A raw CONNECT tunnel (half-open allowed) and the far end's socket for it. */
async function tunnel(proxyPort: number): Promise<{ client: Socket; server: Socket }> {
  const before = accepted.length;
  const client = connect({ host: LOOPBACK, port: proxyPort, allowHalfOpen: true });
  client.on("error", () => undefined);
  cleanup.add(() => client.destroy());
  await once(client, "connect");
  client.write(`CONNECT relay.test:${farPort} HTTP/1.1\r\nHost: relay.test:${farPort}\r\n\r\n`);
  const head = "HTTP/1.1 200 Connection Established\r\n\r\n";
  const got = await readBytes(client, head.length);
  expect(got.toString()).toBe(head);
  await waitFor(() => accepted.length > before, "the far end to accept");
  return { client, server: accepted[before]! };
}

/** sha256 and length of everything a socket delivers until its end. */
function digestUntilEnd(socket: Socket): Promise<{ bytes: number; sha: string }> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    let bytes = 0;
    socket.on("data", (c: Buffer) => {
      h.update(c);
      bytes += c.length;
    });
    socket.once("end", () => resolve({ bytes, sha: h.digest("hex") }));
    socket.once("close", () => reject(new Error(`closed without an end after ${bytes} bytes`)));
  });
}

/** Resolves when the peer has ended or closed (these sockets allow half-open, so an end alone does not close them). */
function ended(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.readableEnded || socket.destroyed) return resolve();
    socket.resume();
    socket.once("end", () => resolve());
    socket.once("close", () => resolve());
  });
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The client's first bytes: on a port other than 443 the gate passes anything that is not TLS. */
const HELLO = Buffer.from("hello\n");

/**
 * The client speaks first (the gate reads the first bytes before the tunnel is spliced), then the
 * far end sends enough to cross the threshold; returns the relay's pid once it runs.
 */
async function handOver(proxy: { relayPids(): number[] }, client: Socket, server: Socket): Promise<{ pid: number; first: Buffer }> {
  client.write(HELLO);
  expect((await readBytes(server, HELLO.length)).toString()).toBe(HELLO.toString());
  const first = randomBytes(THRESHOLD + 64 * 1024);
  server.write(first);
  const seen = await readBytes(client, first.length);
  expect(sha(seen.subarray(0, first.length))).toBe(sha(first));
  await waitFor(() => proxy.relayPids().length === 1, "a kernel relay to start");
  return { pid: proxy.relayPids()[0]!, first };
}

describe("egress proxy kernel relay (lg-relay)", () => {
  it("finds the built binary above the module, and nothing where there is none", () => {
    const root = mkdtempSync(join(tmpdir(), "lg-relay-find-"));
    try {
      expect(findRelay(join(root, "dist", "cli-bundle", "chunks"))).toBeUndefined();
      execFileSync("mkdir", ["-p", join(root, "dist", "bin"), join(root, "dist", "cli-bundle", "chunks"), join(root, "src", "policy", "firewall")]);
      writeFileSync(join(root, RELAY_BINARY), "");
      expect(findRelay(join(root, "dist", "cli-bundle", "chunks"))).toBe(join(root, RELAY_BINARY));
      expect(findRelay(join(root, "src", "policy", "firewall"))).toBe(join(root, RELAY_BINARY));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("hands a busy tunnel over and delivers exactly the bytes sent, both ways at once; bytes are counted", async (t) => {
    if (skip) return t.skip(skip);
    const { proxy, events } = await proxyWith();
    const { client, server } = await tunnel((await proxy.addresses())[0]!.port);
    const { pid, first } = await handOver(proxy, client, server);
    // Confined by its seccomp filter (mode 2), with no other file open than the tunnel, the pipes and stdio.
    await waitFor(() => /^Seccomp:\s+2$/m.test(readFileSync(`/proc/${pid}/status`, "utf8")), "the relay to confine itself");
    expect(readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const up = randomBytes(4 * MB + 123);
    const down = randomBytes(3 * MB + 45);
    const atServer = digestUntilEnd(server);
    const atClient = digestUntilEnd(client);
    client.end(up);
    server.end(down);
    expect(await atServer).toEqual({ bytes: up.length, sha: sha(up) });
    expect(await atClient).toEqual({ bytes: down.length, sha: sha(down) });
    client.destroy();
    server.destroy();
    await waitFor(() => !alive(pid) && proxy.relayPids().length === 0, "the relay to exit");
    await waitFor(() => proxy.tunnelBytes("sb1")[`relay.test:${farPort}`] !== undefined, "the tunnel's bytes to be counted");
    expect(proxy.tunnelBytes("sb1")).toEqual({ [`relay.test:${farPort}`]: { sent: HELLO.length + up.length, received: first.length + down.length } });
    expect(events.filter((e) => e.type === "relay")).toEqual([]);
  });

  for (const [what, first] of [
    ["the client ends first, the far end goes on sending", "client"],
    ["the far end ends first, the client goes on sending", "server"],
  ] as const) {
    it(`keeps half-close: ${what}`, async (t) => {
      if (skip) return t.skip(skip);
      const { proxy } = await proxyWith();
      const { client, server } = await tunnel(proxy.addresses()[0]!.port);
      const { pid } = await handOver(proxy, client, server);
      const [ender, other] = first === "client" ? [client, server] : [server, client];
      const early = randomBytes(MB);
      const atOther = digestUntilEnd(other);
      ender.end(early);
      expect(await atOther).toEqual({ bytes: early.length, sha: sha(early) });
      // The other side saw that end and still talks back.
      const late = randomBytes(2 * MB);
      const atEnder = digestUntilEnd(ender);
      other.end(late);
      expect(await atEnder).toEqual({ bytes: late.length, sha: sha(late) });
      await waitFor(() => !alive(pid), "the relay to exit once both directions ended");
    });
  }

  it("ends the tunnel when the far end closes first, after delivering what it sent", async (t) => {
    if (skip) return t.skip(skip);
    const { proxy } = await proxyWith();
    const { client, server } = await tunnel(proxy.addresses()[0]!.port);
    const { pid } = await handOver(proxy, client, server);
    const down = randomBytes(MB);
    const atClient = digestUntilEnd(client);
    server.end(down);
    server.once("end", () => server.destroy());
    expect(await atClient).toEqual({ bytes: down.length, sha: sha(down) });
    client.end();
    await once(client, "close");
    await waitFor(() => !alive(pid), "the relay to exit");
  });

  it("ends the tunnel when the client resets it, and the far end sees it go", async (t) => {
    if (skip) return t.skip(skip);
    const { proxy } = await proxyWith();
    const { client, server } = await tunnel(proxy.addresses()[0]!.port);
    const { pid } = await handOver(proxy, client, server);
    const serverGone = ended(server);
    client.resetAndDestroy();
    await serverGone;
    await waitFor(() => !alive(pid) && proxy.relayPids().length === 0, "the relay to exit");
  });

  it("stops the relay when the proxy closes, and when the tunnel idles past idleTimeoutMs", async (t) => {
    if (skip) return t.skip(skip);
    const { proxy } = await proxyWith();
    const a = await tunnel(proxy.addresses()[0]!.port);
    const { pid } = await handOver(proxy, a.client, a.server);
    const clientGone = ended(a.client);
    await proxy.close();
    expect(alive(pid)).toBe(false);
    await clientGone;

    const idle = await proxyWith({}, { idleTimeoutMs: 300 });
    const b = await tunnel(idle.proxy.addresses()[0]!.port);
    const second = await handOver(idle.proxy, b.client, b.server);
    await ended(b.client);
    await waitFor(() => !alive(second.pid), "the idle relay to exit");
  });

  it("falls back to the Node relay when the binary is missing or cannot run, saying so once", async (t) => {
    const notExecutable = join(dir, "not-executable");
    writeFileSync(notExecutable, "#!/bin/sh\n");
    chmodSync(notExecutable, 0o644);
    for (const path of [join(dir, "missing", "lg-relay"), notExecutable]) {
      const { proxy, events } = await proxyWith({ path });
      for (let i = 0; i < 2; i++) {
        const { client, server } = await tunnel(proxy.addresses()[0]!.port);
        const up = randomBytes(2 * MB);
        const down = randomBytes(2 * MB + 7);
        const atServer = digestUntilEnd(server);
        const atClient = digestUntilEnd(client);
        client.end(up);
        server.end(down);
        expect(await atServer).toEqual({ bytes: up.length, sha: sha(up) });
        expect(await atClient).toEqual({ bytes: down.length, sha: sha(down) });
        expect(proxy.relayPids()).toEqual([]);
        client.destroy();
        server.destroy();
        await waitFor(() => (proxy.tunnelBytes("sb1")[`relay.test:${farPort}`]?.sent ?? 0) === (i + 1) * up.length, "the tunnel's bytes to be counted");
      }
      expect(proxy.tunnelBytes("sb1")).toEqual({ [`relay.test:${farPort}`]: { sent: 2 * 2 * MB, received: 2 * (2 * MB + 7) } });
      const said = events.filter((e) => e.type === "relay");
      expect(said, path).toHaveLength(1);
      await cleanup.run();
    }
    if (skip) t.skip(skip);
  });
});
