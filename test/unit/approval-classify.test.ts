import { describe, expect, it } from "vitest";
import { classify } from "../../src/approval/classify.js";
import type { ToolCall, ToolAnnotations } from "../../src/approval/types.js";
import type { UserRule } from "../../src/approval/user-rules.js";
import { splitWords } from "../../src/approval/words.js";

const call = (tool: string, args: Record<string, unknown> = {}, annotations?: ToolAnnotations, server = "fs"): ToolCall => ({ server, tool, args, annotations });
const cls = (c: ToolCall, rules: UserRule[] = [], workspaceRoots = ["/workspace"]) => classify(c, { rules, workspaceRoots });

describe("splitWords", () => {
  it.each([
    ["readTextFile", ["read", "text", "file"]],
    ["read_text_file", ["read", "text", "file"]],
    ["get-file-info", ["get", "file", "info"]],
    ["list_allowed_directories", ["list", "allowed", "directories"]],
    ["HTTPGetJSON", ["http", "get", "json"]],
    ["fs.read2", ["fs", "read", "2"]],
    ["v2get", ["v", "2", "get"]],
  ])("%s", (name, words) => {
    expect(splitWords(name)).toEqual(words);
  });
});

describe("classify: verbs", () => {
  it.each([
    "read_file", "read_text_file", "readTextFile", "read_media_file", "read_multiple_files", "list_directory",
    "list_directory_with_sizes", "directory_tree", "search_files", "get_file_info", "get-file-info",
    "list_allowed_directories", "view", "fetch", "status", "show_log", "describe_table", "find", "query", "head", "tail", "stat",
  ])("%s is green", (tool) => {
    const c = cls(call(tool, { path: "/workspace/a" }));
    expect(c.verdict).toBe("green");
    expect(c.risk).toBe("low");
    expect(c.rule).toMatch(/^verb:/);
  });

  it.each([
    ["write_file", "medium"], ["edit_file", "medium"], ["create_directory", "medium"], ["move_file", "medium"],
    ["delete_file", "high"], ["remove", "high"], ["rm", "high"], ["send_email", "high"], ["deploy_app", "high"],
    ["git_push", "high"], ["publish", "high"], ["execute_command", "high"], ["runQuery", "high"], ["transfer_funds", "critical"],
    ["pay_invoice", "critical"], ["drop_table", "high"], ["kill_process", "high"], ["insertRow", "medium"], ["setValue", "medium"],
    ["add_label", "medium"], ["append_log", "medium"], ["upload", "medium"], ["copy_file", "low"], ["install_package", "high"],
  ])("%s is red with risk %s", (tool, risk) => {
    const c = cls(call(tool, { path: "/workspace/a" }));
    expect(c.verdict).toBe("red");
    expect(c.risk).toBe(risk);
  });

  it("matches whole words only: format, address, reset, preset are not rm/add/set", () => {
    // 'format' contains no word 'rm'; 'address' is not 'add'; an unknown word is red by default, not by a verb.
    expect(cls(call("format_document"))).toMatchObject({ verdict: "red", rule: "default:unknown" });
    expect(cls(call("get_address"))).toMatchObject({ verdict: "green", rule: "verb:get" });
    expect(cls(call("get_preset"))).toMatchObject({ verdict: "green", rule: "verb:get" });
    expect(cls(call("list_formats"))).toMatchObject({ verdict: "green", rule: "verb:list" });
    // 'reset' is its own (high) verb, never matched as 'set' (medium).
    expect(cls(call("reset_password"))).toMatchObject({ verdict: "red", rule: "verb:reset", risk: "high" });
    expect(cls(call("readdress"))).toMatchObject({ rule: "default:unknown" });
  });

  it("any red word beats every green one, and the riskiest red word speaks", () => {
    expect(cls(call("read_and_delete"))).toMatchObject({ verdict: "red", rule: "verb:delete", risk: "high" });
    expect(cls(call("getAndTransfer"))).toMatchObject({ verdict: "red", rule: "verb:transfer", risk: "critical" });
    expect(cls(call("write_then_delete"))).toMatchObject({ rule: "verb:delete" });
  });

  it("unknown names are red", () => {
    const c = cls(call("frobnicate", {}));
    expect(c).toMatchObject({ verdict: "red", risk: "medium", rule: "default:unknown" });
    expect(c.reason).toContain("frobnicate");
  });
});

describe("classify: annotations", () => {
  it("readOnlyHint turns an unknown name green", () => {
    expect(cls(call("frobnicate", {}, { readOnlyHint: true }))).toMatchObject({ verdict: "green", rule: "annotation:readOnlyHint" });
  });

  it("a lying readOnlyHint on delete_file does not make it green", () => {
    const c = cls(call("delete_file", { path: "/workspace/a" }, { readOnlyHint: true }));
    expect(c).toMatchObject({ verdict: "red", rule: "verb:delete", risk: "high" });
    expect(c.reason).toContain("readOnlyHint");
  });

  it("destructiveHint makes even a green name red, high", () => {
    expect(cls(call("get_thing", {}, { destructiveHint: true }))).toMatchObject({ verdict: "red", risk: "high", rule: "annotation:destructiveHint" });
    expect(cls(call("pay", {}, { destructiveHint: true }))).toMatchObject({ risk: "critical" });
  });

  it("readOnlyHint false makes a green name red, medium", () => {
    expect(cls(call("get_thing", {}, { readOnlyHint: false, destructiveHint: false }))).toMatchObject({ verdict: "red", risk: "medium", rule: "annotation:readOnlyHint" });
  });

  it("readOnlyHint true does not outweigh a red sign in the args", () => {
    expect(cls(call("read_file", { path: "/etc/shadow" }, { readOnlyHint: true }))).toMatchObject({ verdict: "red", rule: "args:path" });
  });
});

describe("classify: argument signs", () => {
  it("a path outside the workspace is red, high, and named", () => {
    const c = cls(call("read_file", { path: "/etc/passwd" }));
    expect(c).toMatchObject({ verdict: "red", risk: "high", rule: "args:path" });
    expect(c.reason).toContain("path /etc/passwd is outside the workspace");
  });

  it("normalises .. before deciding", () => {
    const c = cls(call("read_file", { path: "/workspace/../etc/passwd" }));
    expect(c).toMatchObject({ verdict: "red", rule: "args:path" });
    expect(c.reason).toContain("/etc/passwd");
    expect(cls(call("read_file", { path: "/workspace/a/../b.txt" })).verdict).toBe("green");
    expect(cls(call("read_file", { path: "sub/../../x" })).verdict).toBe("red");
    expect(cls(call("read_file", { path: "notes.txt" })).verdict).toBe("green");
    // A sibling that only shares the prefix is outside.
    expect(cls(call("read_file", { path: "/workspace2/a" })).verdict).toBe("red");
  });

  it("looks in paths[], nested objects, camelCase keys, ~ and file:// URLs", () => {
    expect(cls(call("read_multiple_files", { paths: ["/workspace/a", "/root/.ssh/id_rsa"] })).reason).toContain("/root/.ssh/id_rsa");
    expect(cls(call("move_file", { source: "/workspace/a", destination: "/tmp/a" })).reason).toContain("/tmp/a");
    expect(cls(call("get_info", { targetPath: "/var/log" })).rule).toBe("args:path");
    expect(cls(call("list", { files: [{ path: "/etc" }] })).rule).toBe("args:path");
    expect(cls(call("read_file", { path: "~/.bashrc" })).rule).toBe("args:path");
    expect(cls(call("read_file", { path: "file:///etc/hosts" })).rule).toBe("args:path");
    // URLs are not local paths; content is not a path.
    expect(cls(call("fetch", { source: "https://example.com/x" })).verdict).toBe("green");
    expect(cls(call("read_file", { path: "/workspace/a", file_content: "/etc/passwd" })).verdict).toBe("green");
  });

  it("honours several workspace roots", () => {
    expect(cls(call("read_file", { path: "/data/x" }), [], ["/workspace", "/data"]).verdict).toBe("green");
  });

  it("a recipient is red", () => {
    expect(cls(call("get_draft", { to: "boss@example.com" }))).toMatchObject({ verdict: "red", risk: "high", rule: "args:recipient" });
    expect(cls(call("search", { channel: "#general" }))).toMatchObject({ rule: "args:recipient" });
    expect(cls(call("search", { to: "" })).verdict).toBe("green");
  });

  it("an amount is red, critical", () => {
    expect(cls(call("get_quote", { amount: 100 }))).toMatchObject({ verdict: "red", risk: "critical", rule: "args:money" });
    expect(cls(call("frob", { value: "10", currency: "EUR" }))).toMatchObject({ rule: "args:money", risk: "critical" });
    expect(cls(call("get_setting", { value: "10" })).verdict).toBe("green");
    // Money outranks a recipient.
    expect(cls(call("send", { to: "bob", amount: 5 })).rule).toBe("args:money");
  });

  it("fetch is green only without a changing HTTP method", () => {
    expect(cls(call("fetch", { url: "https://x", method: "GET" })).verdict).toBe("green");
    expect(cls(call("fetch", { url: "https://x", method: "post" }))).toMatchObject({ verdict: "red", rule: "args:method" });
  });
});

describe("classify: user rules", () => {
  it("turn a red call green, first match wins, with the rule index", () => {
    const rules: UserRule[] = [
      { match: "github__*", verdict: "red", risk: "high" },
      { match: "fs__write_file", args: { path: "/workspace/scratch/*" }, verdict: "green", reason: "scratch is disposable" },
      { match: "fs__*", verdict: "red" },
    ];
    expect(cls(call("write_file", { path: "/workspace/scratch/a.txt", content: "x" }), rules)).toEqual({
      verdict: "green",
      risk: "low",
      reason: "scratch is disposable",
      rule: "user-rule:1",
    });
    expect(cls(call("write_file", { path: "/workspace/other.txt", content: "x" }), rules).rule).toBe("user-rule:2");
  });

  it("turn a green call red", () => {
    const c = cls(call("read_file", { path: "/workspace/secrets.env" }), [{ match: "fs__read_*", args: { path: "*.env" }, verdict: "red", risk: "critical" }]);
    expect(c).toMatchObject({ verdict: "red", risk: "critical", rule: "user-rule:0" });
  });

  it("override argument signs too", () => {
    expect(cls(call("read_file", { path: "/etc/hosts" }), [{ match: "fs__read_file", args: { path: "/etc/hosts" }, verdict: "green" }]).verdict).toBe("green");
  });

  it("match path globs on the normalised path, so .. cannot sneak past", () => {
    const rules: UserRule[] = [{ match: "fs__write_file", args: { path: "/workspace/scratch/*" }, verdict: "green" }];
    const c = cls(call("write_file", { path: "/workspace/scratch/../../etc/passwd", content: "x" }), rules);
    expect(c).toMatchObject({ verdict: "red", rule: "args:path" });
  });

  it("need every arg glob to match and the arg to exist; ? is one character", () => {
    const rules: UserRule[] = [{ match: "db__q?ery", args: { table: "logs", limit: "1?" }, verdict: "green" }];
    expect(cls(call("qxery", { table: "logs", limit: 10 }, undefined, "db"), rules).rule).toBe("user-rule:0");
    expect(cls(call("qxery", { table: "logs", limit: 100 }, undefined, "db"), rules).rule).toBe("default:unknown");
    expect(cls(call("qxery", { table: "logs" }, undefined, "db"), rules).rule).toBe("default:unknown");
  });
});
