/**
 * Escape attempts run inside a sandbox; every one must fail. Shared by all
 * backends, like the conformance suite: a backend ships only when all fail.
 * The attempts themselves are data (./attempts.ts), also run by bench/security.ts
 * to write docs/SECURITY.md; here every check is an assertion.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sandbox } from "../../src/sandbox/types.js";
import type { ConformanceTarget } from "../conformance/suite.js";
import { ESCAPE_ATTEMPTS, startBait, type EscapeBait, type Judge } from "./attempts.js";

/** Every check fails the test, with what was observed. */
const assertingJudge: Judge = {
  blocked: (ok, what) => expect(ok, `not blocked: ${what}`).toBe(true),
  sane: (ok, what) => expect(ok, `precondition failed: ${what}`).toBe(true),
};

export function defineEscapeSuite(t: ConformanceTarget): void {
  describe.skipIf(t.skip !== undefined)(`escape attempts: ${t.name}`, () => {
    let sb: Sandbox;
    let bait: EscapeBait;

    beforeAll(async () => {
      sb = await t.backend().create(t.spec);
      bait = await startBait();
    });
    afterAll(async () => {
      await bait?.close();
      await sb?.destroy();
    });

    for (const attempt of ESCAPE_ATTEMPTS) {
      it(`cannot ${attempt.title} (${attempt.id})`, async () => {
        await attempt.run(sb, bait, assertingJudge);
      });
    }
  });
}
