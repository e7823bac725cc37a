import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ownScratchDir, sweepStaleScratch } from "../../src/sandbox/namespace/scratch.js";

describe("sandbox scratch folders", () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("removes only the folders of owners that are gone", async () => {
    const root = mkdtempSync(join(tmpdir(), "lg-scratch-"));
    dirs.push(root);
    const mine = await ownScratchDir(root);
    mkdirSync(join(mine, "sb-live"));
    // pid 1 is alive but with another start time: a reused pid, so its owner is gone.
    const dead = [join(root, "pid-1-12345", "sb-a"), join(root, "pid-4194303-7", "sb-b")];
    dead.forEach((d) => mkdirSync(d, { recursive: true }));
    mkdirSync(join(root, "not-an-owner"));

    const removed = await sweepStaleScratch(root);

    expect(removed.sort()).toEqual([join(root, "pid-1-12345"), join(root, "pid-4194303-7")]);
    expect(existsSync(join(mine, "sb-live"))).toBe(true);
    expect(existsSync(join(root, "not-an-owner"))).toBe(true);
  });

  it("a process that exits removes its owner folder when it is empty, and keeps it when it is not", () => {
    // The built module (make test builds dist/ first), in a process of its own, since the removal happens at its exit.
    const mod = resolve("dist/sandbox/namespace/scratch.js");
    const script = `import { writeFileSync } from "node:fs"; import { ownScratchDir } from ${JSON.stringify(mod)};
      const d = await ownScratchDir(process.argv[1]); if (process.argv[2] === "keep") writeFileSync(d + "/sb-left", ""); console.log(d);`;
    const run = (mode: string): string => {
      const root = mkdtempSync(join(tmpdir(), "lg-scratch-"));
      dirs.push(root);
      const owner = execFileSync(process.execPath, ["--input-type=module", "-e", script, root, mode], { encoding: "utf8" }).trim();
      expect(owner.startsWith(join(root, "pid-"))).toBe(true);
      return root;
    };
    expect(readdirSync(run("empty"))).toEqual([]);
    const kept = run("keep");
    expect(readdirSync(kept)).toHaveLength(1);
    expect(readdirSync(join(kept, readdirSync(kept)[0]!))).toEqual(["sb-left"]);
  });
});
