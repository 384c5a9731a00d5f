/**
 * Durations as written on the command line: `120s`, `2m`, `500ms`, `1h`, or plain seconds.
 * @module
 */

/**
 * Milliseconds of a duration, or undefined when it does not parse.
 * @example parseDuration("120s") // 120000
 */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const unit = m[2] ?? "s";
  const scale = unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000;
  return Math.round(Number(m[1]) * scale);
}
