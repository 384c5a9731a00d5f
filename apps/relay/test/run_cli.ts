/**
 * Run the real launcher (bin/anysrc) under a chosen runtime and capture what it prints.
 * @module
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const LAUNCHER = fileURLToPath(new URL("../bin/anysrc", import.meta.url));
export const RUNTIMES = ["bun", "deno", "node"] as const;
export type Runtime = (typeof RUNTIMES)[number];

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run `anysrc --runtime <runtime> ...args` to completion. */
export function runCli(runtime: Runtime, args: string[]): CliResult {
  const r = spawnSync(LAUNCHER, ["--runtime", runtime, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
