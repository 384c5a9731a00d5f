/**
 * The relay command line the profile scripts start in the router namespace: the C relay, or
 * `anysrc tproxy` under one runtime (raw, bindsrc or tun; JSON stats at exit only).
 * @module
 */
import process from "node:process";
import { REPO_ROOT } from "@anysrc/testbed";

/** TPROXY port and upstream mark of the profile testbeds (the bench's own values). */
export const PROFILE_PORT = 15000;
const UPSTREAM_MARK = "2";

/**
 * argv of relay `who` ("c", "bun", "deno", "node"), `cli` being the anysrc launcher to run.
 * @example relayArgv("bun", "raw", cli, bin.tproxy_relay!) // [cli, "--runtime", "bun", "tproxy", …]
 */
export function relayArgv(who: string, transport: string, cli: string, cRelay: string): string[] {
  if (who === "c") return [cRelay, String(PROFILE_PORT), UPSTREAM_MARK];
  return [
    cli,
    "--runtime",
    who,
    "tproxy",
    "--port",
    String(PROFILE_PORT),
    "--transport",
    transport,
    "--mark",
    UPSTREAM_MARK,
    "--stats",
    "json",
    "--stats-interval",
    "0",
  ];
}

/** The parseArgs options that choose the relay (`--relay`, `--transport`, `--cli`), shared by the profile scripts. */
export const RELAY_CHOICE_OPTIONS = {
  relay: { type: "string", default: "bun" },
  transport: { type: "string", default: "raw" },
  cli: { type: "string", default: `${REPO_ROOT}apps/relay/bin/anysrc` },
} as const;

/**
 * The JSC options asked for as `PROFILE_BUN_JSC_<option>=value` in this script's environment, as the
 * `BUN_JSC_<option>` variables that set them in the profiled Bun (reportCompileTimes, …).
 * @example PROFILE_BUN_JSC_reportCompileTimes=true → { BUN_JSC_reportCompileTimes: "true" }
 */
export function jscOptionsFromEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith("PROFILE_BUN_JSC_") && v) env[k.slice(8)] = v;
  return env;
}
