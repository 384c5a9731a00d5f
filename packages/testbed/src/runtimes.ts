/**
 * How to start a TypeScript entry point under Bun, Deno or Node from the tests, with the runtimes
 * that `npm ci` installed.
 * @module
 */
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** The Node peer used on the far side of every namespace test. */
export const UDP_PEER = fileURLToPath(new URL("./udp_peer.mjs", import.meta.url));
export const RUNTIMES = ["bun", "deno", "node"] as const;
export type Runtime = (typeof RUNTIMES)[number];

/**
 * The argv that runs `script` under `runtime`.
 * @example runtimeArgv("deno", "test/sys/sys_scenarios.ts", ["echo"])
 */
export function runtimeArgv(runtime: Runtime, script: string, args: readonly string[]): string[] {
  const bin = `${REPO_ROOT}node_modules/.bin/${runtime}`;
  const path = script.startsWith("/") ? script : `${REPO_ROOT}${script}`;
  if (runtime === "bun") return [bin, path, ...args];
  // Node ≥ 26: node:ffi behind its flag; TypeScript through Node's type stripping.
  if (runtime === "node") return [bin, "--experimental-ffi", "--disable-warning=ExperimentalWarning", path, ...args];
  return [bin, "run", "--quiet", "--no-prompt", "--config", `${REPO_ROOT}deno.json`, "--allow-all", path, ...args];
}
