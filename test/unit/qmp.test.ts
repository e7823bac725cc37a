/**
 * The QMP client against a fake QMP server on a Unix socket made here: framing,
 * greeting and capabilities, id matching when replies come out of order, events,
 * QEMU errors, timeouts and a lost connection.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { QmpClient, QmpError, type QmpEvent } from "../../src/sandbox/microvm/qmp.js";

const GREETING = { QMP: { version: { qemu: { micro: 22, minor: 2, major: 7 }, package: "fake" }, capabilities: ["oob"] } };

interface Command {
  execute: string;
  arguments?: Record<string, unknown>;
  id?: unknown;
}

/** A QMP server that greets, accepts qmp_capabilities and hands every other command to `onCommand`. */
class FakeQmp {
  readonly path: string;
  readonly received: Command[] = [];
  conn: Socket | undefined;
  private server: Server | undefined;

  constructor(
    dir: string,
    private readonly onCommand: (cmd: Command, send: (msg: unknown) => void, conn: Socket) => void = () => {},
    private readonly opts: { greet?: boolean } = {},
  ) {
    this.path = join(dir, "qmp.sock");
  }

  listen(): Promise<void> {
    this.server = createServer((conn) => {
      this.conn = conn;
      const send = (msg: unknown): void => void conn.write(`${JSON.stringify(msg)}\r\n`);
      if (this.opts.greet ?? true) send(GREETING);
      let buf = "";
      conn.setEncoding("utf8");
      conn.on("error", () => {});
      conn.on("data", (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const cmd = JSON.parse(buf.slice(0, nl)) as Command;
          buf = buf.slice(nl + 1);
          this.received.push(cmd);
          if (cmd.execute === "qmp_capabilities") send({ return: {}, id: cmd.id });
          else this.onCommand(cmd, send, conn);
        }
      });
    });
    return new Promise((resolve) => this.server!.listen(this.path, resolve));
  }

  close(): void {
    this.conn?.destroy();
    this.server?.close();
  }
}

describe("QMP client", () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).reverse().forEach((f) => f()));

  async function setup(onCommand?: ConstructorParameters<typeof FakeQmp>[1], opts?: ConstructorParameters<typeof FakeQmp>[2]): Promise<{ server: FakeQmp; client: QmpClient }> {
    const dir = mkdtempSync(join(tmpdir(), "lg-qmp-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const server = new FakeQmp(dir, onCommand, opts);
    await server.listen();
    cleanups.push(() => server.close());
    const client = await QmpClient.connect(server.path, { timeoutMs: 2000 });
    cleanups.push(() => client.close());
    return { server, client };
  }

  it("reads the greeting and negotiates capabilities before anything else", async () => {
    const { server, client } = await setup();
    expect(client.greeting.version.qemu).toEqual({ major: 7, minor: 2, micro: 22 });
    expect(client.greeting.capabilities).toEqual(["oob"]);
    expect(server.received[0]).toMatchObject({ execute: "qmp_capabilities" });
    expect(typeof server.received[0]!.id).toBe("number");
  });

  it("matches replies to commands by id when they come out of order", async () => {
    const held: { cmd: Command; send: (m: unknown) => void }[] = [];
    const { client } = await setup((cmd, send) => {
      held.push({ cmd, send });
      if (held.length === 3) {
        // Answer the last first, then the first, then the middle one.
        for (const i of [2, 0, 1]) held[i]!.send({ return: { echo: held[i]!.cmd.arguments?.n }, id: held[i]!.cmd.id });
      }
    });
    const replies = await Promise.all([1, 2, 3].map((n) => client.execute<{ echo: number }>("echo", { n })));
    expect(replies.map((r) => r.echo)).toEqual([1, 2, 3]);
  });

  it("splits messages on line ends however the bytes arrive", async () => {
    const { client } = await setup((cmd, _send, conn) => {
      const a = `${JSON.stringify({ event: "STOP", data: {}, timestamp: { seconds: 1, microseconds: 2 } })}\r\n`;
      const b = `${JSON.stringify({ return: { status: "paused" }, id: cmd.id })}\r\n`;
      // One event and the reply in three pieces, the cut inside a JSON string.
      const all = a + b;
      const cut1 = a.length - 5;
      const cut2 = a.length + 12;
      conn.write(all.slice(0, cut1));
      setTimeout(() => conn.write(all.slice(cut1, cut2)), 5);
      setTimeout(() => conn.write(all.slice(cut2)), 10);
    });
    const events: QmpEvent[] = [];
    client.onEvent((e) => events.push(e));
    await expect(client.execute("query-status")).resolves.toEqual({ status: "paused" });
    expect(events).toEqual([{ event: "STOP", data: {}, timestamp: { seconds: 1, microseconds: 2 } }]);
  });

  it("delivers events to listeners, iterators and waiters, interleaved with replies", async () => {
    const { client } = await setup((cmd, send) => {
      if (cmd.execute === "stop") {
        send({ event: "STOP", timestamp: { seconds: 10, microseconds: 0 } });
        send({ return: {}, id: cmd.id });
        send({ event: "MIGRATION", data: { status: "setup" }, timestamp: { seconds: 11, microseconds: 0 } });
        send({ event: "MIGRATION", data: { status: "completed" }, timestamp: { seconds: 12, microseconds: 0 } });
      }
    });
    const seen: string[] = [];
    const off = client.onEvent((e) => seen.push(e.event));
    const iter = client.events();
    const completed = client.waitForEvent("MIGRATION", { match: (e) => e.data.status === "completed", timeoutMs: 2000 });
    await client.execute("stop");
    expect((await completed).timestamp.seconds).toBe(12);
    expect(seen).toEqual(["STOP", "MIGRATION", "MIGRATION"]);
    const fromIter: string[] = [];
    for await (const e of iter) {
      fromIter.push(`${e.event}:${String(e.data.status ?? "")}`);
      if (fromIter.length === 3) break;
    }
    expect(fromIter).toEqual(["STOP:", "MIGRATION:setup", "MIGRATION:completed"]);
    off();
    expect(client.listenerCount("event")).toBe(0);
  });

  it("turns a QMP error into a typed error with QEMU's class and text", async () => {
    const { client } = await setup((cmd, send) => send({ error: { class: "CommandNotFound", desc: `The command ${cmd.execute} has not been found` }, id: cmd.id }));
    const err = await client.execute("frobnicate").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpError);
    expect(err).toMatchObject({ code: "E_QMP_COMMAND", qmpClass: "CommandNotFound", qmpDesc: "The command frobnicate has not been found", command: "frobnicate" });
    expect((err as QmpError).details).toMatchObject({ qmpClass: "CommandNotFound" });
    // The connection survives a refused command.
    expect(client.isClosed).toBe(false);
  });

  it("gives an id-less error (QEMU could not parse the input) to the oldest command", async () => {
    const { client } = await setup((cmd, send) => {
      if (cmd.execute === "bad") send({ error: { class: "GenericError", desc: "JSON parse error" } });
      else send({ return: "ok", id: cmd.id });
    });
    await expect(client.execute("bad")).rejects.toMatchObject({ code: "E_QMP_COMMAND", qmpDesc: "JSON parse error" });
    await expect(client.execute("good")).resolves.toBe("ok");
  });

  it("times out one command without disturbing the others, and drops its late reply", async () => {
    let late: (() => void) | undefined;
    const { client } = await setup((cmd, send) => {
      if (cmd.execute === "slow") late = () => send({ return: "late", id: cmd.id });
      else send({ return: "fast", id: cmd.id });
    });
    const started = performance.now();
    const err = await client.execute("slow", undefined, { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
    expect(err).toMatchObject({ code: "E_QMP_TIMEOUT", command: "slow" });
    late!();
    await expect(client.execute("fast")).resolves.toBe("fast");
  });

  it("cancels a command on abort", async () => {
    const { client } = await setup(() => {});
    const ac = new AbortController();
    const p = client.execute("never", undefined, { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: "E_QMP" });
  });

  it("rejects every pending command, waiter and later command when the connection is lost", async () => {
    const { server, client } = await setup(() => {});
    const pending = [client.execute("a"), client.execute("b")];
    const waiter = client.waitForEvent("SHUTDOWN", { timeoutMs: 5000 });
    const iter = client.events();
    const next = iter.next();
    // Wait until both commands reached the server, then drop the connection.
    while (server.received.length < 3) await new Promise((r) => setTimeout(r, 5));
    server.conn!.destroy();
    for (const p of pending) await expect(p).rejects.toMatchObject({ code: "E_QMP" });
    await expect(waiter).rejects.toMatchObject({ code: "E_QMP" });
    await expect(next).resolves.toEqual({ value: undefined, done: true });
    const reason = await client.closed;
    expect(reason).toBeInstanceOf(QmpError);
    expect(client.isClosed).toBe(true);
    await expect(client.execute("c")).rejects.toMatchObject({ code: "E_QMP" });
  });

  it("closes on a line that is not JSON", async () => {
    const { client } = await setup((_cmd, _send, conn) => void conn.write("this is not qmp\r\n"));
    await expect(client.execute("x")).rejects.toMatchObject({ code: "E_QMP" });
    expect((await client.closed)?.message).toMatch(/not JSON/);
  });

  it("close() rejects pending commands and resolves `closed` with no error", async () => {
    const { client } = await setup(() => {});
    const p = client.execute("x");
    client.close();
    await expect(p).rejects.toMatchObject({ code: "E_QMP" });
    expect(await client.closed).toBeUndefined();
  });

  it("waits for a socket that does not exist yet when asked to", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lg-qmp-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const server = new FakeQmp(dir);
    cleanups.push(() => server.close());
    const connecting = QmpClient.connect(server.path, { waitForSocket: true, timeoutMs: 3000 });
    await new Promise((r) => setTimeout(r, 100));
    await server.listen();
    const client = await connecting;
    cleanups.push(() => client.close());
    expect(client.greeting.version.qemu.major).toBe(7);
    // Without waitForSocket a missing socket fails at once.
    await expect(QmpClient.connect(join(dir, "missing.sock"))).rejects.toMatchObject({ code: "E_QMP" });
  });

  it("times out a server that accepts but never greets", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lg-qmp-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const server = new FakeQmp(dir, undefined, { greet: false });
    await server.listen();
    cleanups.push(() => server.close());
    await expect(QmpClient.connect(server.path, { timeoutMs: 150 })).rejects.toMatchObject({ code: "E_QMP_TIMEOUT" });
  });
});
