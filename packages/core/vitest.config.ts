import process from "node:process";
import { defineConfig } from "vitest/config";
import { sourceConditions } from "../../vitest.source.ts";

// The property suites' case count comes from here (FC_RUNS), so that core's own sources read no
// environment: tests take it with inject("parserRuns").
export default defineConfig({
  ...sourceConditions,
  test: { include: ["src/**/*.test.ts"], testTimeout: 120_000, provide: { parserRuns: Number(process.env.FC_RUNS ?? 100_000) } },
});

declare module "vitest" {
  export interface ProvidedContext {
    parserRuns: number;
  }
}
