/** The plumbing around ip and nft, tested with stand-ins: no privileges, no kernel objects. */
import { afterEach, describe, expect, it } from "vitest";
import { requirePrivilege } from "../../src/policy/firewall/host.js";
import { shellQuote, shellScript, ShellRunner, SpawnRunner, type CommandRunner } from "../../src/policy/firewall/runner.js";
import { ipSessionSpec, Session, type SessionSpec } from "../../src/policy/firewall/session.js";
import { parseCounterSet, parseNamedCounter } from "../../src/policy/firewall/stats.js";
import { objectsOf, parseTableListing } from "../../src/policy/firewall/sweep.js";

describe("command runners", () => {
  const runners: CommandRunner[] = [];
  afterEach(() => {
    for (const r of runners.splice(0)) r.close();
  });

  it.each([
    ["shell", () => new ShellRunner(2)],
    ["spawn", () => new SpawnRunner()],
  ])("%s: feeds stdin, merges output, stops at the first failure", async (_name, make) => {
    const r = make();
    runners.push(r);
    expect(await r.run([{ argv: ["cat"], input: "a line\nLG_EOF_x\n" }, { argv: ["sh", "-c", "echo out; echo err >&2"] }])).toEqual({ code: 0, output: "a line\nLG_EOF_x\nout\nerr\n" });
    expect(await r.run([{ argv: ["sh", "-c", "echo first; exit 3"] }, { argv: ["echo", "never"] }])).toEqual({ code: 3, output: "first\n" });
    // Ten at once through at most two shells: every answer reaches its own caller.
    const many = await Promise.all(Array.from({ length: 10 }, (_, i) => r.run([{ argv: ["echo", `n${i}`] }])));
    expect(many.map((m) => m.output)).toEqual(Array.from({ length: 10 }, (_, i) => `n${i}\n`));
  });

  it("kills a command that runs too long, and keeps working", async () => {
    const r = new ShellRunner(1);
    runners.push(r);
    await expect(r.run([{ argv: ["sleep", "5"] }], { timeoutMs: 100 })).rejects.toThrow(/did not finish within 100 ms/);
    expect(await r.run([{ argv: ["echo", "again"] }])).toEqual({ code: 0, output: "again\n" });
  });

  it("quotes for sh and never lets input be expanded", () => {
    expect(shellQuote("/usr/sbin/nft")).toBe("/usr/sbin/nft");
    expect(shellQuote("it's $(x)")).toBe(`'it'\\''s $(x)'`);
    expect(shellScript([{ argv: ["ip", "-batch", "-"], input: "$(reboot)" }])).toMatch(/^ip -batch - <<'LG_EOF_[0-9a-f]{12}' 2>&1\n\$\(reboot\)\nLG_EOF_[0-9a-f]{12}\n$/);
  });
});

/** A stand-in for `ip -force -batch -`: "ok" lines succeed silently, "fail X" complains, "link show dev X" fails like ip does, "die" exits. */
const FAKE_IP = `
let n = 0;
require("node:readline").createInterface({ input: process.stdin }).on("line", (l) => {
  n++;
  const dev = /^link show dev (\\S+)$/.exec(l);
  if (dev) process.stderr.write('Device "' + dev[1] + '" does not exist.\\nCommand failed -:' + n + "\\n");
  else if (l.startsWith("fail ")) process.stderr.write("Error: " + l.slice(5) + "\\nCommand failed -:" + n + "\\n");
  else if (l === "die") process.exit(7);
});
`;

describe("Session", () => {
  const spec: SessionSpec = { ...ipSessionSpec("ip"), argv: [process.execPath, "-e", FAKE_IP] };
  const sessions: Session[] = [];
  afterEach(() => {
    for (const s of sessions.splice(0)) s.close();
  });
  const session = () => {
    const s = new Session(spec);
    sessions.push(s);
    return s;
  };

  it("answers requests in order and keeps each one's complaint to itself", async () => {
    const s = session();
    const [a, b, c] = await Promise.all([s.run("ok\nok\n"), s.run("ok\nfail boom\nok\n"), s.run("ok")]);
    expect(a).toEqual({ ok: true, output: "" });
    expect(b).toEqual({ ok: false, output: "Error: boom\nCommand failed -:5\n" });
    expect(c).toEqual({ ok: true, output: "" });
  });

  it("fails pending requests when the process dies, and starts a new one next time", async () => {
    const s = session();
    await expect(s.run("die\n")).rejects.toThrow(/exited \(7\)/);
    expect(await s.run("ok\n")).toEqual({ ok: true, output: "" });
  });

  it("gives up on a process that never answers", async () => {
    const stuck = new Session({ ...spec, argv: ["sleep", "10"] });
    sessions.push(stuck);
    await expect(stuck.run("ok\n", 100)).rejects.toThrow(/did not answer within 100 ms/);
  });
});

describe("requirePrivilege", () => {
  const caps = (hex: string) => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${hex}\n`;

  it("fails closed when not root, naming the fix", () => {
    expect(() => requirePrivilege({ uid: 1000, status: caps("0000000000000000") })).toThrow(
      expect.objectContaining({ code: "E_FIREWALL_PRIVILEGE", message: expect.stringMatching(/not running as root\. Run LuminaGuard as root .*network "none"/) }),
    );
  });

  it("fails when root lacks CAP_NET_ADMIN or CAP_SYS_ADMIN (a container without them)", () => {
    expect(() => requirePrivilege({ uid: 0, status: caps("00000000a80425fb") })).toThrow(/lacks CAP_NET_ADMIN and CAP_SYS_ADMIN/);
    expect(() => requirePrivilege({ uid: 0, status: caps("000001ffffffffff") })).not.toThrow();
  });
});

describe("reading nft listings", () => {
  it("turns a dynamic counter set into per-destination stats", () => {
    const json = {
      nftables: [
        { metainfo: { version: "1.0.6" } },
        {
          set: {
            name: "sb_1a2b3c4d_den",
            elem: [
              { elem: { val: { concat: ["10.0.0.1", "tcp", 443] }, counter: { packets: 3, bytes: 180 } } },
              { elem: { val: { concat: ["10.0.0.2", "udp", 53] }, counter: { packets: 5, bytes: 300 } } },
              { elem: { val: { concat: ["10.0.0.3", "icmp", 1234] }, counter: { packets: 1, bytes: 84 } } },
              { elem: { val: { concat: ["10.0.0.3", "icmp", 999] }, counter: { packets: 1, bytes: 84 } } },
            ],
          },
        },
      ],
    };
    expect(parseCounterSet(json)).toEqual([
      { dest: "10.0.0.2", port: 53, proto: "udp", connections: 5 },
      { dest: "10.0.0.1", port: 443, proto: "tcp", connections: 3 },
      { dest: "10.0.0.3", port: null, proto: "icmp", connections: 2 },
    ]);
    expect(parseCounterSet(undefined)).toEqual([]);
    expect(parseNamedCounter({ nftables: [{ metainfo: {} }, { counter: { name: "x", packets: 7, bytes: 1 } }] })).toBe(7);
  });

  it("finds one sandbox's objects in a table listing", () => {
    const listing = parseTableListing({
      nftables: [
        { table: { name: "luminaguard" } },
        { chain: { name: "forward" } },
        { chain: { name: "sb_1a2b3c4d" } },
        { chain: { name: "sb_1a2b3c4d_in" } },
        { chain: { name: "sb_99999999" } },
        { set: { name: "sb_1a2b3c4d_allow" } },
        { set: { name: "masquerade_src", elem: ["10.203.0.2", "10.203.0.6"] } },
        { map: { name: "forward_map", elem: [["lgh1a2b3c4d", { goto: { target: "sb_1a2b3c4d" } }]] } },
        { map: { name: "input_map", elem: [] } },
        { counter: { name: "sb_1a2b3c4d_denied" } },
      ],
    });
    expect(objectsOf(listing, "1a2b3c4d", "10.203.0.2")).toEqual({
      forwardMapKey: true,
      inputMapKey: false,
      masqueradeAddress: "10.203.0.2",
      chains: ["sb_1a2b3c4d", "sb_1a2b3c4d_in"],
      sets: ["sb_1a2b3c4d_allow"],
      counters: ["sb_1a2b3c4d_denied"],
    });
  });
});
