/**
 * The daemon's runtime events (pool, sandboxes, approvals, MCP calls, tasks) on
 * one bus, so the SSE stream, webhooks and anything later hear the same thing.
 * Recent events are kept so an SSE client reconnecting with Last-Event-ID
 * misses nothing that happened in between.
 */

/** One runtime event; `type` is dotted ("approval.added", "task.finished", "mcp.call"). */
export interface RuntimeEvent {
  /** Increasing per daemon run. */
  id: number;
  type: string;
  /** ISO 8601. */
  time: string;
  data: Record<string, unknown>;
}

export type EventListener = (event: RuntimeEvent) => void;

const KEEP = 512;

/** Fan-out of runtime events with a short replay buffer. */
export class EventBus {
  readonly #listeners = new Set<EventListener>();
  readonly #recent: RuntimeEvent[] = [];
  #next = 1;

  /** Publish an event to every listener; a failing listener never stops the others. */
  publish(type: string, data: Record<string, unknown>): RuntimeEvent {
    const event: RuntimeEvent = { id: this.#next++, type, time: new Date().toISOString(), data };
    this.#recent.push(event);
    if (this.#recent.length > KEEP) this.#recent.shift();
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch {
        // A dropped stream or a broken webhook queue must not stop the runtime.
      }
    }
    return event;
  }

  /** Listen to every event; returns the function that stops listening. */
  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Kept events newer than `id` (for Last-Event-ID). */
  since(id: number): RuntimeEvent[] {
    return this.#recent.filter((e) => e.id > id);
  }
}

/** True when `type` matches a subscription pattern: exact, "prefix.*" or "*". */
export function eventMatches(pattern: string, type: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith(".*")) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}
