/**
 * GET /v1/events: runtime events as server-sent events (`event: <type>`, `id`,
 * `data: <json>`), a heartbeat comment every 15 s so proxies and clients see a
 * live connection, and the missed events replayed after Last-Event-ID.
 */
import type { DaemonApp, DaemonContext } from "../context.js";
import { eventMatches, type RuntimeEvent } from "../events.js";

/** Heartbeat period; exported for tests that want to read the stream's shape. */
export const HEARTBEAT_MS = 15_000;

/** Mount the event stream. */
export function eventRoutes(app: DaemonApp, ctx: DaemonContext): void {
  app.get("/v1/events", (c) => {
    // ?types=approval.*,task.* narrows the stream; default everything.
    const patterns = (c.req.query("types") ?? "*").split(",").map((s) => s.trim()).filter(Boolean);
    const lastId = Number(c.req.header("last-event-id") ?? "0");
    const enc = new TextEncoder();
    let cleanup = (): void => undefined;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        let open = true;
        const write = (text: string): void => {
          if (!open) return;
          try {
            controller.enqueue(enc.encode(text));
          } catch {
            cleanup();
          }
        };
        const send = (e: RuntimeEvent): void => {
          if (patterns.some((p) => eventMatches(p, e.type))) write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify({ ...e.data, time: e.time })}\n\n`);
        };
        // Tell the client how long to wait before reconnecting, and that the stream is live.
        write(`retry: 3000\n: connected\n\n`);
        if (Number.isInteger(lastId) && lastId > 0) for (const e of ctx.events.since(lastId)) send(e);
        const unsubscribe = ctx.events.subscribe(send);
        const heartbeat = setInterval(() => write(`: heartbeat ${new Date().toISOString()}\n\n`), HEARTBEAT_MS);
        const onShutdown = (): void => cleanup();
        ctx.shutdown.addEventListener("abort", onShutdown, { once: true });
        cleanup = () => {
          if (!open) return;
          open = false;
          clearInterval(heartbeat);
          unsubscribe();
          ctx.shutdown.removeEventListener("abort", onShutdown);
          try {
            controller.close();
          } catch {
            // already closed by the client
          }
        };
        if (ctx.shutdown.aborted) cleanup();
      },
      cancel() {
        cleanup();
      },
    });
    return c.body(stream, 200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive", "x-accel-buffering": "no" });
  });
}
