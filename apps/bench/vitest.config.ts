import { defineConfig } from "vitest/config";
import { sourceConditions } from "../../vitest.source.ts";

export default defineConfig({ ...sourceConditions, test: { include: ["test/**/*.test.ts"], testTimeout: 120_000, fileParallelism: false } });
