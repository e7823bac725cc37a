/**
 * Hub tool names (`server__tool`: letters, digits, _ - ., up to 128+) mapped to
 * names the model APIs accept (`^[a-zA-Z0-9_-]{1,64}$`), and back. Names that
 * already fit are kept as they are, so the model sees the hub's names wherever
 * it can; the others get dots replaced and, when too long, a short hash suffix,
 * made unique within the table.
 */
import { createHash } from "node:crypto";

const SAFE = /^[a-zA-Z0-9_-]{1,64}$/;
const MAX = 64;

/** A two-way table between hub names and provider-safe names for one set of tools. */
export class ToolNameMap {
  private readonly toSafe = new Map<string, string>();
  private readonly toHub = new Map<string, string>();

  constructor(hubNames: Iterable<string>) {
    const names = [...hubNames];
    // Names that fit go first, so a mapped name can never take one of theirs.
    for (const name of names) if (SAFE.test(name)) this.add(name, name);
    for (const name of names) if (!SAFE.test(name)) this.add(name, this.unique(mangle(name)));
  }

  /** The name to show the model. */
  safe(hubName: string): string {
    // A name from earlier in the conversation whose tool is gone still has to be valid for the API.
    return this.toSafe.get(hubName) ?? (SAFE.test(hubName) ? hubName : mangle(hubName));
  }

  /** The hub name for a name the model used (unknown names pass through, and the hub reports them). */
  hub(safeName: string): string {
    return this.toHub.get(safeName) ?? safeName;
  }

  private add(hub: string, safe: string): void {
    if (this.toSafe.has(hub)) return;
    this.toSafe.set(hub, safe);
    this.toHub.set(safe, hub);
  }

  private unique(candidate: string): string {
    let name = candidate;
    for (let n = 2; this.toHub.has(name); n++) name = withSuffix(candidate, `_${n}`);
    return name;
  }
}

function mangle(name: string): string {
  const replaced = name.replace(/[^a-zA-Z0-9_-]/g, "_") || "tool";
  if (replaced.length <= MAX) return replaced;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 8);
  return withSuffix(replaced, `_${hash}`);
}

function withSuffix(name: string, suffix: string): string {
  return `${name.slice(0, MAX - suffix.length)}${suffix}`;
}
