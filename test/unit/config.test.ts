import { describe, expect, it } from "vitest";
import { parseSize, formatSize } from "../../src/config/size.js";
import { parseDuration } from "../../src/config/duration.js";
import { parseConfig } from "../../src/config/load.js";
import { toSandboxSpec } from "../../src/config/schema.js";

describe("parseSize", () => {
  it.each([
    ["1048576", 1048576],
    ["512M", 512 * 1024 ** 2],
    ["512m", 512 * 1024 ** 2],
    ["1.5GiB", 1.5 * 1024 ** 3],
    ["100MB", 100_000_000],
    ["64k", 65536],
    [" 2G ", 2 * 1024 ** 3],
  ])("%s → %d bytes", (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  it.each(["12XB", "", "-1M", "M", "1..5G", "1e9", "ten"])("rejects %j with a usage error that shows an example", (input) => {
    expect(() => parseSize(input, "memory limit")).toThrow(expect.objectContaining({ code: "E_USAGE", message: expect.stringMatching(/memory limit.*512M/) }));
  });

  it("formats sizes for people", () => {
    expect(formatSize(512 * 1024 ** 2)).toBe("512 MiB");
    expect(formatSize(1536)).toBe("1.5 KiB");
  });
});

describe("parseDuration", () => {
  it.each([
    ["30", 30_000],
    ["30s", 30_000],
    ["500ms", 500],
    ["2m", 120_000],
    ["0.5s", 500],
  ])("%s → %d ms", (input, ms) => expect(parseDuration(input)).toBe(ms));

  it.each(["0", "-1s", "10x", "s", ""])("rejects %j", (input) => {
    expect(() => parseDuration(input, "--timeout")).toThrow(expect.objectContaining({ code: "E_USAGE" }));
  });
});

describe("config schema", () => {
  it("fills every default from an empty file", () => {
    const c = parseConfig({});
    expect(toSandboxSpec(c.sandbox)).toEqual({
      backend: "namespace",
      limits: { memoryBytes: 512 * 1024 ** 2, pids: 256, cpus: 1, diskBytes: 1024 ** 3 },
      seccomp: { level: "default", mode: "enforce" },
      network: "none",
      workspace: undefined,
      maxFileBytes: 16 * 1024 ** 2,
      mounts: [],
    });
    expect(c.mcp).toMatchObject({ servers: {}, callTimeoutSeconds: 60, maxOutputBytes: 1024 ** 2 });
    expect(c.approval).toMatchObject({ approver: "auto", timeoutSeconds: 120, workspaceRoots: ["/workspace"] });
    expect(c.pool).toEqual({ min: 2, max: 8, maxQueue: 64, leaseTimeoutMs: 30_000 });
  });

  it("reads MCP servers, inferring the type from command or url", () => {
    const c = parseConfig({ mcp: { servers: { fs: { command: "node", args: ["s.js"] }, web: { url: "http://127.0.0.1:9/mcp", allow: ["127.0.0.1:9"] } } } });
    expect(c.mcp.servers.fs).toMatchObject({ type: "stdio", command: "node", args: ["s.js"], env: {}, enabled: true });
    expect(c.mcp.servers.fs?.type === "stdio" && c.mcp.servers.fs.sandbox.backend).toBe("namespace");
    expect(c.mcp.servers.web).toMatchObject({ type: "http", transport: "auto", allow: ["127.0.0.1:9"] });
  });

  it("accepts sizes as strings", () => {
    expect(parseConfig({ sandbox: { limits: { memory: "1G" } } }).sandbox.limits.memory).toBe(1024 ** 3);
  });

  it("reads limits.disk as a size (default 1 GiB) into the spec's diskBytes", () => {
    const spec = (disk: unknown) => toSandboxSpec(parseConfig({ sandbox: { limits: { disk } } }).sandbox).limits.diskBytes;
    expect(spec("32M")).toBe(32 * 1024 ** 2);
    expect(spec("2GiB")).toBe(2 * 1024 ** 3);
    expect(spec(8 * 1024 ** 2)).toBe(8 * 1024 ** 2);
    expect(toSandboxSpec(parseConfig({ sandbox: { limits: { memory: "64M" } } }).sandbox).limits.diskBytes).toBe(1024 ** 3);
    // An MCP server's own sandbox section has the same setting.
    const c = parseConfig({ mcp: { servers: { fs: { command: "node", sandbox: { limits: { disk: "64M" } } } } } });
    expect(c.mcp.servers.fs?.type === "stdio" && c.mcp.servers.fs.sandbox.limits.disk).toBe(64 * 1024 ** 2);
  });

  it.each([
    [{ sandbox: { limits: { memory: "12XB" } } }, /memory limit/],
    [{ sandbox: { limits: { memory: "1M" } } }, /at least 16M/],
    [{ sandbox: { limits: { pids: 2 } } }, /pids limit must be at least 4/],
    [{ sandbox: { limits: { disk: "12XB" } } }, /Invalid disk limit "12XB"/],
    [{ sandbox: { limits: { disk: "512K" } } }, /disk limit must be at least 1M/],
    [{ sandbox: { seccomp: { level: "loose" } } }, /strict|default|permissive/],
    [{ sandbox: { backend: "docker" } }, /namespace/],
    [{ sandbox: { unknownKey: 1 } }, /unknownKey/],
    [{ pool: { min: 9, max: 8 } }, /pool.min must not exceed pool.max/],
    [{ sandbox: { mounts: [{ source: "relative", target: "/opt/x" }] } }, /absolute host path/],
    [{ sandbox: { mounts: [{ source: "/srv", target: "/workspace/x" }] } }, /sandbox's own areas/],
    [{ sandbox: { mounts: [{ source: "/srv", target: "/" }] } }, /sandbox's own areas/],
    [{ sandbox: { mounts: [{ source: "/srv", target: "/opt/../tmp" }] } }, /must not contain '..'/],
    [{ mcp: { servers: { "a__b": { command: "x" } } } }, /'__' separates server and tool/],
    [{ mcp: { servers: { fs: { args: [] } } } }, /command/],
    [{ mcp: { servers: { web: { url: "ftp://x" } } } }, /http:\/\/ or https:\/\//],
    [{ approval: { approver: "robot" } }, /terminal|policy/],
  ])("rejects %j with a readable message", (raw, pattern) => {
    expect(() => parseConfig(raw)).toThrow(expect.objectContaining({ code: "E_CONFIG", message: expect.stringMatching(pattern) }));
  });
});
