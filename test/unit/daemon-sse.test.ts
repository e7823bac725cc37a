/**
 * The CLI's side of the daemon's event stream: the SSE parser (chunks cut
 * anywhere, CRLF, comments, multi-line data) and DaemonClient.stream against a
 * real HTTP server on a Unix socket (events delivered, heartbeats skipped,
 * abort resolves, the daemon closing the stream and refusing it are errors).
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SseParser, type SseEvent } from "../../src/daemon/sse.js";
import { DaemonClient } from "../../src/daemon/client.js";

function parseAll(chunks: string[]): SseEvent[] {
  const got: SseEvent[] = [];
  const p = new SseParser((e) => got.push(e));
  for (const c of chunks) p.push(new TextEncoder().encode(c));
  return got;
}

describe("SseParser", () => {
  const stream = `retry: 3000\n: connected\n\nid: 7\nevent: task.text\ndata: {"taskId":"t1","text":"héllo"}\n\n: heartbeat 2025\n\nid: 8\nevent: approval.added\ndata: {"id":"a"}\n\n`;

  it("yields events with id, type and parsed data; comments and retry are skipped", () => {
    expect(parseAll([stream])).toEqual([
      { id: 7, type: "task.text", data: { taskId: "t1", text: "héllo" } },
      { id: 8, type: "approval.added", data: { id: "a" } },
    ]);
  });

  it("gives the same events however the bytes are cut (inside lines, inside a UTF-8 character)", () => {
    const bytes = new TextEncoder().encode(stream);
    const whole = parseAll([stream]);
    for (let cut = 1; cut < bytes.length; cut += 3) {
      const got: SseEvent[] = [];
      const p = new SseParser((e) => got.push(e));
      p.push(bytes.subarray(0, cut));
      p.push(bytes.subarray(cut));
      expect(got, `cut at ${cut}`).toEqual(whole);
    }
  });

  it("handles CRLF and a CR split from its LF, joins multi-line data, keeps non-JSON as text", () => {
    expect(parseAll(["event: x\r", "\ndata: one\r\ndata: two\r\n\r\n", "data: [1]\n\n"])).toEqual([
      { id: undefined, type: "x", data: { text: "one\ntwo" } },
      { id: undefined, type: "message", data: { value: [1] } },
    ]);
  });

  it("does not dispatch an event without data", () => {
    expect(parseAll(["event: nothing\n\n"])).toEqual([]);
  });
});

describe("DaemonClient.stream", () => {
  let dir: string;
  let server: Server;
  let socket: string;
  const open: ServerResponse[] = [];
  let mode: "events" | "refuse" | "close" = "events";

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "lg-sse-"));
    socket = join(dir, "s.sock");
    server = createServer((req, res) => {
      if (mode === "refuse") {
        res.writeHead(503, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "E_DAEMON_SHUTTING_DOWN", message: "stopping" } }));
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`: connected\n\n: heartbeat\n\nid: 1\nevent: task.started\ndata: {"path":${JSON.stringify(req.url)}}\n\n`);
      if (mode === "close") res.end();
      else open.push(res);
    });
    await new Promise<void>((r) => server.listen(socket, r));
  });
  afterAll(async () => {
    for (const r of open) r.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("delivers events after onOpen, and resolves when aborted", async () => {
    mode = "events";
    const got: SseEvent[] = [];
    const stop = new AbortController();
    let opened = false;
    const done = new DaemonClient(socket).stream(
      "/v1/events?types=task.*",
      (e) => {
        got.push(e);
        stop.abort();
      },
      stop.signal,
      { onOpen: () => (opened = true) },
    );
    await expect(done).resolves.toBeUndefined();
    expect(opened).toBe(true);
    expect(got).toEqual([{ id: 1, type: "task.started", data: { path: "/v1/events?types=task.*" } }]);
  });

  it("rejects with E_DAEMON_STREAM_CLOSED when the daemon ends the stream", async () => {
    mode = "close";
    const got: SseEvent[] = [];
    await expect(new DaemonClient(socket).stream("/v1/events", (e) => got.push(e))).rejects.toMatchObject({ code: "E_DAEMON_STREAM_CLOSED" });
    expect(got).toHaveLength(1);
  });

  it("rejects with the daemon's own code when it refuses, and E_DAEMON_NOT_RUNNING without a daemon", async () => {
    mode = "refuse";
    await expect(new DaemonClient(socket).stream("/v1/events", () => undefined)).rejects.toMatchObject({ code: "E_DAEMON_SHUTTING_DOWN" });
    await expect(new DaemonClient(join(dir, "none.sock")).stream("/v1/events", () => undefined)).rejects.toMatchObject({ code: "E_DAEMON_NOT_RUNNING" });
  });
});
