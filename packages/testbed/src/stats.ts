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

/**
 * Median of the finite values of a list, NaN when there are none: a void ratio (NaN) or a run that
 * measured nothing does not move it.
 * @example medianOfFinite([1, Number.NaN, 3]) // 2
 */
export function medianOfFinite(xs: readonly number[]): number {
  const kept = xs.filter((x) => Number.isFinite(x));
  return kept.length === 0 ? Number.NaN : median(kept);
}

/** "median (min–max)" with a formatter. */
export function summary(xs: readonly number[], fmt: (x: number) => string): string {
  if (xs.length === 0) return "–";
  return `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
}
