/** Choosing a provider (config, flags, environment), the agent config section, recordings and tool-name mapping. */
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { chooseProvider, detectProvider, providerSecrets } from "../../src/agent/providers/choose.js";
import { loadRecording, parseRecording, sampleNames } from "../../src/agent/providers/recording.js";
import { keysFromEnv, retryAfterMs } from "../../src/agent/providers/keys.js";
import { ToolNameMap } from "../../src/agent/tool-names.js";
import { limitsFromConfig } from "../../src/agent/limits.js";

const agent = (raw: Record<string, unknown> = {}) => parseConfig({ agent: raw }).agent;

describe("agent config", () => {
  it("has defaults and validates", () => {
    expect(agent()).toMatchObject({ provider: "auto", maxSteps: 20, timeoutSeconds: 600, tokenBudget: 200_000, stream: true });
    expect(limitsFromConfig(agent({ maxSteps: 3 }), { timeoutMs: 5 })).toEqual({ maxSteps: 3, timeoutMs: 5, tokenBudget: 200_000 });
    expect(() => agent({ provider: "gemini" })).toThrow(/agent\.provider/);
    expect(() => agent({ baseUrl: "ftp://x" })).toThrow(/http/);
    expect(() => agent({ maxSteps: 0 })).toThrow(/maxSteps/);
  });
});

describe("choosing a provider", () => {
  it("auto picks OpenAI, then Anthropic, then Ollama from the environment", async () => {
    expect(detectProvider({ OPENAI_API_KEY: "a", ANTHROPIC_API_KEY: "b", OLLAMA_HOST: "h" })).toBe("openai");
    expect(detectProvider({ ANTHROPIC_API_KEY: "b", OLLAMA_HOST: "h" })).toBe("anthropic");
    expect(detectProvider({ OLLAMA_HOST: "h" })).toBe("ollama");
    const p = await chooseProvider({ config: agent(), env: { ANTHROPIC_API_KEY: "b" } });
    expect([p.name, p.model]).toEqual(["anthropic", "claude-sonnet-4-5"]);
    const o = await chooseProvider({ config: agent({ model: "qwen3" }), env: { OLLAMA_HOST: "127.0.0.1:11434" } });
    expect([o.name, o.model]).toEqual(["ollama", "qwen3"]);
  });

  it("with nothing set, E_AGENT_NO_PROVIDER names every variable to set", async () => {
    const err = await chooseProvider({ config: agent(), env: {} }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "E_AGENT_NO_PROVIDER" });
    for (const v of ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OLLAMA_HOST", "--provider replay --transcript FILE"]) expect((err as Error).message).toContain(v);
    await expect(chooseProvider({ config: agent({ provider: "anthropic" }), env: { OPENAI_API_KEY: "x" } })).rejects.toThrow(/ANTHROPIC_API_KEY is not set/);
  });

  it("flags win over the config; replay plays the built-in sample by default", async () => {
    const p = await chooseProvider({ config: agent({ provider: "openai" }), env: {}, provider: "replay" });
    expect([p.name, p.model]).toEqual(["replay", "sample:fs-edit"]);
  });

  it("reads fallback keys in order and never lets a key be logged", () => {
    expect(keysFromEnv({ OPENAI_API_KEY: "a", OPENAI_API_KEY_2: "b", OPENAI_API_KEY_3: " c ", OPENAI_API_KEY_5: "e" }, "OPENAI_API_KEY")).toEqual(["a", "b", "c"]);
    expect(keysFromEnv({ OPENAI_API_KEY_2: "b" }, "OPENAI_API_KEY")).toEqual(["b"]);
    expect(providerSecrets({ OPENAI_API_KEY: "sk-1234", ANTHROPIC_API_KEY_2: "ak-5678", HOME: "/root" }).sort()).toEqual(["ak-5678", "sk-1234"]);
  });

  it("parses Retry-After as seconds, milliseconds or a date", () => {
    const h = (m: Record<string, string>) => (n: string) => m[n];
    expect(retryAfterMs(h({ "retry-after": "2" }))).toBe(2000);
    expect(retryAfterMs(h({ "retry-after-ms": "150", "retry-after": "9" }))).toBe(150);
    const inAMinute = retryAfterMs(h({ "retry-after": new Date(Date.now() + 60_000).toUTCString() }))!;
    expect(inAMinute).toBeGreaterThan(50_000);
    expect(retryAfterMs(h({}))).toBeUndefined();
  });
});

describe("recordings", () => {
  it("accepts a list of turns or {turns}, and explains a bad one", () => {
    expect(parseRecording([{ text: "hi" }], "a.json")).toEqual({ name: "a.json", turns: [{ text: "hi" }] });
    expect(parseRecording({ name: "demo", turns: [{ toolCalls: [{ name: "fs__x" }] }] }, "b.json")).toMatchObject({ name: "demo", turns: [{ toolCalls: [{ name: "fs__x", args: {} }] }] });
    expect(() => parseRecording([{ tools: [] }], "c.json")).toThrow(expect.objectContaining({ code: "E_AGENT_REPLAY" }));
  });

  it("has the built-in sample, a task against server-filesystem whose last call is an edit", () => {
    expect(sampleNames()).toContain("fs-edit");
    const r = loadRecording("sample:fs-edit");
    expect(r.turns.flatMap((t) => t.toolCalls ?? []).map((c) => c.name)).toEqual(["fs__list_directory", "fs__read_text_file", "fs__edit_file"]);
    expect(() => loadRecording("sample:nope")).toThrow(/sample:fs-edit/);
    expect(() => loadRecording("/nonexistent/rec.json")).toThrow(expect.objectContaining({ code: "E_AGENT_REPLAY" }));
  });
});

describe("tool names for the model APIs", () => {
  it("keeps names that fit, maps the others reversibly and uniquely", () => {
    const long = `srv__${"x".repeat(100)}`;
    const map = new ToolNameMap(["fs__read_text_file", "web__fetch.page", "web__fetch_page", long, `${long}.y`]);
    expect(map.safe("fs__read_text_file")).toBe("fs__read_text_file");
    // "web__fetch_page" exists as a real tool, so the dotted one must not take its name.
    expect(map.safe("web__fetch_page")).toBe("web__fetch_page");
    expect(map.safe("web__fetch.page")).toBe("web__fetch_page_2");
    for (const n of ["web__fetch.page", long, `${long}.y`]) {
      expect(map.safe(n)).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
      expect(map.hub(map.safe(n))).toBe(n);
    }
    expect(map.safe(long)).not.toBe(map.safe(`${long}.y`));
    expect(map.hub("made_up")).toBe("made_up");
  });
});
