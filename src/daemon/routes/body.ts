/** Reading and validating JSON request bodies with one clear 400 on any problem. */
import type { Context } from "hono";
import * as z from "zod/mini";
import { badRequest } from "../errors.js";

/** The request's JSON body validated by `schema`; E_DAEMON_BAD_REQUEST listing every issue otherwise. */
export async function readJson<T extends z.ZodMiniType>(c: Context, schema: T, opts: { optional?: boolean } = {}): Promise<z.infer<T>> {
  const text = await c.req.text();
  let raw: unknown = undefined;
  if (text.trim() !== "") {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw badRequest(`The request body is not valid JSON: ${(err as Error).message}.`);
    }
  } else if (!opts.optional) {
    throw badRequest("This request needs a JSON body.");
  }
  const result = schema.safeParse(raw ?? {});
  if (!result.success) {
    const issues = result.error.issues.map((i) => (i.path.length > 0 ? `${i.message} (at ${i.path.join(".")})` : i.message));
    throw badRequest(`Invalid request body: ${issues.join("; ")}`, { issues });
  }
  return result.data as z.infer<T>;
}
