/**
 * `--config FILE`: a JSON object whose keys are the command's long flags without dashes
 * (`{"port": 15000, "transport": "raw", "listen": ["0.0.0.0", "::"]}`). Flags on the command line
 * win over the file. Unknown keys are an error, like unknown flags.
 * @module
 */
import { readTextFile } from "../host.ts";
import { UsageError } from "./usage_error.ts";

/** Flag values as parseArgs returns them. */
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/**
 * Read a config file into flag values for `command`, accepting only `known` flags (`multiple` ones
 * may be arrays).
 * @example const fromFile = readConfig("tproxy", "relay.json", { port: false, listen: true });
 */
export function readConfig(command: string, path: string, known: Record<string, boolean>): FlagValues {
  let text: string;
  try {
    text = readTextFile(path);
  } catch (e) {
    throw new UsageError(command, `--config ${path}: cannot read: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new UsageError(command, `--config ${path}: not valid JSON: ${(e as Error).message}`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new UsageError(command, `--config ${path}: expected a JSON object`);
  const out: FlagValues = {};
  for (const [key, value] of Object.entries(data)) {
    if (!(key in known) || key === "config") throw new UsageError(command, `--config ${path}: unknown setting "${key}"`);
    const multiple = known[key];
    if (multiple) {
      const list = Array.isArray(value) ? value : [value];
      if (!list.every((v) => typeof v === "string" || typeof v === "number")) {
        throw new UsageError(command, `--config ${path}: "${key}" must be a string or a list of strings`);
      }
      out[key] = list.map(String);
    } else {
      if (typeof value !== "string" && typeof value !== "number") throw new UsageError(command, `--config ${path}: "${key}" must be a string or a number`);
      out[key] = String(value);
    }
  }
  return out;
}

/** Command-line values over file values. */
export function mergeFlags(fromFile: FlagValues, fromCli: FlagValues): FlagValues {
  const out: FlagValues = { ...fromFile };
  for (const [k, v] of Object.entries(fromCli)) if (v !== undefined) out[k] = v;
  return out;
}
