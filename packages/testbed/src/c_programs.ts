/**
 * The C baselines and load generators, compiled from the sources kept in packages/testbed/c with the machine's `cc`.
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SOURCES = fileURLToPath(new URL("../c/", import.meta.url));

/**
 * Compile `names` (without `.c`) with -O2 into a fresh temporary directory; returns name → binary path.
 * @example const bin = compileC(["udp_flood", "udp_sink"]);
 */
export function compileC(names: readonly string[]): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), "anysrc-bench-"));
  const out: Record<string, string> = {};
  for (const name of names) {
    const binary = join(dir, name);
    try {
      execFileSync("cc", ["-O2", "-Wall", "-o", binary, join(SOURCES, `${name}.c`)], { stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      throw new Error(`cc failed for ${name}.c (apt-get install gcc libc6-dev): ${(e as { stderr?: Buffer }).stderr?.toString() ?? e}`);
    }
    out[name] = binary;
  }
  return out;
}
