/** The guest agent run in-process for tests: a Link that decodes what it sends, and an agent on temp folders. */
import { join } from "node:path";
import { FrameDecoder, type Token } from "../../src/guest/protocol.js";
import type { Link } from "../../src/guest/link.js";
import { Agent } from "../../src/guest/dispatcher.js";

/** A Link that collects and decodes what the agent sends. */
export class CollectingLink implements Link {
  readonly decoder = new FrameDecoder();
  readonly got: Token[] = [];
  write(buf: Buffer): void {
    this.got.push(...this.decoder.push(buf));
  }
  readonly backlog = 0;
  drained(): Promise<void> {
    return Promise.resolve();
  }
  discardQueued(): void {}
  close(): void {}
  headers(): Record<string, unknown>[] {
    return this.got.flatMap((t) => (t.kind === "frame" ? [t.frame.header] : []));
  }
}

/** An agent whose areas live under `dir` and which never touches the host's clock, hostname or RNG. */
export function testAgent(dir: string, version: string): Agent {
  return new Agent({
    agentVersion: version,
    areas: { workspace: join(dir, "workspace"), tmp: join(dir, "tmp") },
    stateDir: join(dir, "state"),
    reseed: { helper: undefined, setClock: false, setHostname: false },
    log: () => {},
  });
}
