import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
});
