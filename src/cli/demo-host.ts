/**
 * A stand-in "internet" host for the demo and bench/net: a network namespace
 * made here, a veth to the host's namespace, a /24 of its own and a Node server
 * inside. Traffic to it never leaves this machine; stop() removes all of it.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";

export interface DemoHostOptions {
  /** Names the namespace and the host-side veth (≤ 15 characters). */
  name: string;
  /** The host's address inside its namespace, and the host-side gateway; both in one /24. */
  address: string;
  gateway: string;
  /** Node source run inside; it prints one line when it is listening. */
  server: string;
}

function ip(args: string[], input?: string): void {
  execFileSync("ip", args, { input, stdio: ["pipe", "ignore", "pipe"] });
}

export class DemoHost {
  private constructor(
    private readonly name: string,
    private readonly child: ChildProcess,
  ) {}

  /** Create the namespace and link, start the server, wait until it is listening. */
  static async start(o: DemoHostOptions): Promise<DemoHost> {
    let child: ChildProcess | undefined;
    try {
      ip(["netns", "add", o.name]);
      ip(["-batch", "-"], `link add ${o.name} type veth peer name eth0 netns ${o.name}\naddress add ${o.gateway}/24 dev ${o.name}\nlink set dev ${o.name} up\n`);
      ip(["-n", o.name, "-batch", "-"], `link set dev lo up\naddress add ${o.address}/24 dev eth0\nlink set dev eth0 up\nroute add default via ${o.gateway}\n`);
      const c = spawn("ip", ["netns", "exec", o.name, process.execPath, "-e", o.server], { stdio: ["ignore", "pipe", "ignore"] });
      child = c;
      await new Promise<void>((resolve, reject) => {
        c.stdout!.once("data", () => resolve());
        c.once("exit", (code) => reject(new Error(`the test host ${o.name} exited with ${code}`)));
      });
      return new DemoHost(o.name, c);
    } catch (err) {
      cleanup(o.name, child);
      throw err;
    }
  }

  /** Kill the server and remove the link and namespace. Safe to call twice. */
  stop(): void {
    cleanup(this.name, this.child);
  }
}

function cleanup(name: string, child: ChildProcess | undefined): void {
  child?.kill("SIGKILL");
  for (const args of [["link", "delete", "dev", name], ["netns", "delete", name]]) {
    try {
      ip(args);
    } catch {
      // not created, or gone with the namespace
    }
  }
}
