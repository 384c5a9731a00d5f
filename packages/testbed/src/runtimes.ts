/**
 * How to start a TypeScript entry point under Bun, Deno or Node from the tests, with the runtimes
 * that `npm ci` installed.
 * @module
 */
import { fileURLToPath } from "node:url";

export const REPO_ROOT: string = fileURLToPath(new URL("../../../", import.meta.url));
/** The Node peer used on the far side of every namespace test. */
export const UDP_PEER: string = fileURLToPath(new URL("./udp_peer.mjs", import.meta.url));
/** The export condition under which every workspace package resolves to `src/*.ts` instead of `dist/`. */
export const SOURCE_CONDITION = "anysrc-source";
export const RUNTIMES = ["bun", "deno", "node"] as const;
export type Runtime = (typeof RUNTIMES)[number];

/**
 * The argv that runs `script` under `runtime`.
 * @example runtimeArgv("deno", "test/sys/sys_scenarios.ts", ["echo"])
 */
export function runtimeArgv(runtime: Runtime, script: string, args: readonly string[]): string[] {
  const bin = `${REPO_ROOT}node_modules/.bin/${runtime}`;
  const path = script.startsWith("/") ? script : `${REPO_ROOT}${script}`;
  // Bun and Node resolve the workspace packages to their sources (the `anysrc-source` export
  // condition); Deno reads them from the workspace's deno.json exports.
  if (runtime === "bun") return [bin, `--conditions=${SOURCE_CONDITION}`, path, ...args];
  // Node ≥ 26: node:ffi behind its flag; TypeScript through Node's type stripping.
  if (runtime === "node") return [bin, "--experimental-ffi", "--disable-warning=ExperimentalWarning", `--conditions=${SOURCE_CONDITION}`, path, ...args];
  return [bin, "run", "--quiet", "--no-prompt", "--config", `${REPO_ROOT}deno.json`, "--allow-all", path, ...args];
}
