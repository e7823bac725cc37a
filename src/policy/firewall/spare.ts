/**
 * Spare network namespaces: `unshare -n ip -force -batch -` processes started
 * ahead of time, each sitting in a fresh, empty, unnamed network namespace.
 *
 * Setting a sandbox's address and route needs a process inside its namespace,
 * and starting one (`ip -n`) is most of an attach's cost on slow-to-fork hosts.
 * A spare is that process, already running: an attach names its namespace
 * (`ip netns attach <name> <pid>`), plugs the veth in, feeds it the inside
 * batch, and closes its stdin. Until then a spare owns nothing: if this process
 * dies, the spare's stdin closes, it exits, and its namespace vanishes with it.
 */
import { readlinkSync } from "node:fs";
import { ipSessionSpec, Session } from "./session.js";

export class Spare {
  private readonly session: Session;
  private ready = false;

  constructor(unshare: string, ip: string) {
    const spec = ipSessionSpec(ip);
    this.session = new Session({ ...spec, argv: [unshare, "-n", ...spec.argv] });
    // An empty request answers once ip runs, i.e. after unshare made the namespace.
    this.session.run("").then(
      (r) => (this.ready = r.ok),
      () => (this.ready = false),
    );
  }

  /**
   * The pid whose namespace an attach may adopt, or undefined when this spare is
   * not usable. Its namespace must differ from ours: naming our own namespace as
   * a sandbox's would be a disaster, so this is checked, not assumed.
   */
  usablePid(): number | undefined {
    const pid = this.session.pid;
    if (!this.ready || !this.session.alive || pid === undefined) return undefined;
    try {
      return readlinkSync(`/proc/${pid}/ns/net`) !== readlinkSync("/proc/self/ns/net") ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Run the inside batch in the spare's namespace. */
  run(script: string): Promise<{ ok: boolean; output: string }> {
    return this.session.run(script);
  }

  /** Done with it: it exits after the last request (the namespace lives on if it was named). */
  end(): void {
    this.session.end();
  }

  /** Kill it now (unused spares at close). */
  close(): void {
    this.session.close();
  }
}
