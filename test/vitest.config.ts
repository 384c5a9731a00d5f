import { defineConfig } from "vitest/config";
import { sourceConditions } from "../vitest.source.ts";

// Suites share one machine's network stack and spawn runtimes: run files one at a time.
export default defineConfig({ ...sourceConditions, test: { include: ["**/*.test.ts"], testTimeout: 120_000, hookTimeout: 120_000, fileParallelism: false } });
