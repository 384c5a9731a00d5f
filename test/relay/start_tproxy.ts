/**
 * The relay as the end-to-end suites start it.
 * @module
 */
import { type JsonChild, REPO_ROOT, type Testbed } from "@anysrc/testbed";

/** The launcher of the repository's CLI. */
export const ANYSRC = `${REPO_ROOT}apps/relay/bin/anysrc`;
let tunCount = 0;

/**
 * Start `anysrc tproxy --port PORT` in the router namespace with JSON events, no periodic stats line,
 * upstream mark 2 (the TPROXY mark is 1: marked upstream packets would be delivered back to the
 * relay) and a TUN device name of its own; resolves once it listens, or throws with what it said.
 * @example const r = await startTproxy(bed, "deno", 15000, ["--transport", "raw"]);
 */
export function startTproxy(bed: Testbed, runtime: string, port: number, args: readonly string[]): Promise<JsonChild> {
  return startTproxyWith(bed, [ANYSRC, "--runtime", runtime], port, args);
}

/**
 * {@link startTproxy} through another command line for the CLI, e.g. a single-file executable.
 * @example const r = await startTproxyWith(bed, ["/tmp/x/anysrc"], 15000, ["--transport", "raw"]);
 */
export async function startTproxyWith(bed: Testbed, cli: readonly string[], port: number, args: readonly string[]): Promise<JsonChild> {
  const tun = `ast${process.pid % 1000}x${tunCount++}`;
  const p = bed.spawn(bed.router, [...cli, "tproxy", "--port", String(port), "--stats", "json", "--stats-interval", "0", "--mark", "2", "--tun", tun, ...args]);
  const l = await p.waitFor((x) => x.event === "listening" || x.event === "error", 30_000);
  if (l.event !== "listening") throw new Error(`relay did not start: ${JSON.stringify(l)} ${p.stderr()}`);
  return p;
}
