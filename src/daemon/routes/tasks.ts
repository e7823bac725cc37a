/** /v1/tasks: start, list, show, cancel and read agent tasks through the TaskRunner. */
import * as z from "zod/mini";
import type { DaemonApp, DaemonContext } from "../context.js";
import { DaemonError, notFound } from "../errors.js";
import type { TaskRunner } from "../tasks.js";
import { readJson } from "./body.js";

const startSchema = z.strictObject({
  task: z.string().check(z.minLength(1, "task must be a non-empty string"), z.maxLength(100_000, "task must be at most 100000 characters")),
  provider: z.optional(z.string().check(z.minLength(1))),
  model: z.optional(z.string().check(z.minLength(1))),
});

/** Mount the task routes. */
export function taskRoutes(app: DaemonApp, ctx: DaemonContext): void {
  const runner = (): TaskRunner => {
    const r = ctx.tasks();
    if (!r) throw new DaemonError("E_DAEMON_NO_AGENT", "This daemon has no agent to run tasks with yet; sandboxes, approvals, audit and /mcp work without one.");
    return r;
  };
  const missing = (id: string) => notFound(`Task ${id}`, "list tasks with GET /v1/tasks.");

  app.post("/v1/tasks", async (c) => {
    const r = runner();
    const body = await readJson(c, startSchema);
    const { id } = await r.start(body.task, { provider: body.provider, model: body.model, client: c.get("client") });
    return c.json({ id, status: r.status(id) ?? null }, 201);
  });
  app.get("/v1/tasks", (c) => c.json({ tasks: runner().list() }));
  app.get("/v1/tasks/:id", (c) => {
    const status = runner().status(c.req.param("id"));
    if (!status) throw missing(c.req.param("id"));
    return c.json(status);
  });
  app.post("/v1/tasks/:id/cancel", async (c) => {
    const r = runner();
    const id = c.req.param("id");
    if (!r.status(id)) throw missing(id);
    const cancelled = await r.cancel(id);
    return c.json({ id, cancelled, status: r.status(id) ?? null });
  });
  app.get("/v1/tasks/:id/transcript", (c) => {
    const transcript = runner().transcript(c.req.param("id"));
    if (!transcript) throw missing(c.req.param("id"));
    return c.json({ id: c.req.param("id"), transcript });
  });
}
