import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Removes the empty per-process runtime folders of the run's workers at the end.
    globalSetup: ["test/helpers/global-teardown.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Sandbox tests spawn real processes; two cores do not gain from many workers.
    maxWorkers: 2,
    reporters: ["default"],
  },
});
