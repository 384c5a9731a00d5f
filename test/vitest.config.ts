import { defineConfig } from "vitest/config";
import { sourceConditions } from "../vitest.source.ts";

// Suites share one machine's network stack and spawn runtimes: run files one at a time.
// A suite whose worker crashed cannot clean up after itself: leftover_namespaces.ts does, when the run ends.
export default defineConfig({
  ...sourceConditions,
  test: { include: ["**/*.test.ts"], testTimeout: 120_000, hookTimeout: 120_000, fileParallelism: false, globalSetup: ["./leftover_namespaces.ts"] },
});
