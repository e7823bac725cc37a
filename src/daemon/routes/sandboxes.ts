/**
 * /v1/sandboxes: create (from the warm pool), list, exec with streamed output,
 * files, destroy.
 */
import * as z from "zod/mini";
import type { DaemonApp, DaemonContext } from "../context.js";
import { badRequest } from "../errors.js";
import { readJson } from "./body.js";
import { execStream } from "./exec-stream.js";

const execSchema = z.strictObject({
  argv: z.array(z.string()).check(z.minLength(1, "argv needs at least the program, like [\"ls\", \"-l\"]")),
  /** Text written to the command's stdin (then closed). */
  stdin: z.optional(z.string()),
  /** Bytes for stdin as base64, for binary input. */
  stdinBase64: z.optional(z.base64()),
  env: z.optional(z.record(z.string(), z.string())),
  cwd: z.optional(z.string().check(z.minLength(1))),
  /** Seconds before the command's process tree is killed. */
  timeout: z.optional(z.number().check(z.positive("timeout is a number of seconds > 0"), z.lte(86_400))),
});

const createSchema = z.optional(z.strictObject({ spec: z.optional(z.unknown()) }));

/** Mount the sandbox routes. */
export function sandboxRoutes(app: DaemonApp, ctx: DaemonContext): void {
  app.post("/v1/sandboxes", async (c) => {
    const body = await readJson(c, createSchema, { optional: true });
    const spec = ctx.sandboxes.specFor(body?.spec);
    const info = await ctx.sandboxes.create(spec, c.req.raw.signal);
    ctx.events.publish("sandbox.created", { id: info.id, backend: info.backend, client: c.get("client"), warm: info.warm });
    return c.json(info, 201);
  });

  app.get("/v1/sandboxes", (c) => c.json({ sandboxes: ctx.sandboxes.list(), pools: ctx.sandboxes.poolStats().map((p) => ({ backend: p.backend, default: p.default, stats: p.stats })) }));

  app.delete("/v1/sandboxes/:id", async (c) => {
    const id = c.req.param("id");
    await ctx.sandboxes.destroy(id);
    ctx.events.publish("sandbox.destroyed", { id, client: c.get("client") });
    return c.json({ id, destroyed: true });
  });

  app.post("/v1/sandboxes/:id/exec", async (c) => {
    const sandbox = ctx.sandboxes.get(c.req.param("id"));
    const body = await readJson(c, execSchema);
    if (body.stdin !== undefined && body.stdinBase64 !== undefined) throw badRequest("Give stdin or stdinBase64, not both.");
    const abort = new AbortController();
    // Without stdin the command's stdin is closed at once: nothing could write to it later.
    const stdin = body.stdinBase64 !== undefined ? Buffer.from(body.stdinBase64, "base64") : (body.stdin ?? "");
    const handle = sandbox.exec(body.argv, {
      stdin,
      ...(body.env ? { env: body.env } : {}),
      ...(body.cwd ? { cwd: body.cwd } : {}),
      ...(body.timeout ? { timeoutMs: Math.round(body.timeout * 1000) } : {}),
      signal: AbortSignal.any([abort.signal, ctx.shutdown]),
    });
    return c.body(execStream(handle, abort), 200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
  });

  app.get("/v1/sandboxes/:id/files", async (c) => {
    const sandbox = ctx.sandboxes.get(c.req.param("id"));
    const path = pathParam(c.req.query("path"));
    if (c.req.query("list") !== undefined) return c.json({ path, entries: await sandbox.files.list(path) });
    const data = await sandbox.files.read(path);
    return c.body(data as Uint8Array<ArrayBuffer>, 200, { "content-type": "application/octet-stream", "content-length": String(data.byteLength) });
  });

  app.put("/v1/sandboxes/:id/files", async (c) => {
    const sandbox = ctx.sandboxes.get(c.req.param("id"));
    const path = pathParam(c.req.query("path"));
    const data = new Uint8Array(await c.req.arrayBuffer());
    await sandbox.files.write(path, data);
    return c.json({ path, bytes: data.byteLength });
  });

  app.delete("/v1/sandboxes/:id/files", async (c) => {
    const sandbox = ctx.sandboxes.get(c.req.param("id"));
    const path = pathParam(c.req.query("path"));
    await sandbox.files.remove(path, { recursive: c.req.query("recursive") === "true" });
    return c.json({ path, removed: true });
  });
}

function pathParam(path: string | undefined): string {
  if (!path) throw badRequest("Name the file with ?path=/workspace/<file> (paths under /workspace or /tmp).");
  return path;
}
