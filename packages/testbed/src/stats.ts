/**
 * Small statistics for benchmark reports: median and range of repetitions.
 * @module
 */

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** "median (min–max)" with a formatter. */
export function summary(xs: readonly number[], fmt: (x: number) => string): string {
  if (xs.length === 0) return "–";
  return `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
}
