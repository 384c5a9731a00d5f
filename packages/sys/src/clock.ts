/**
 * CLOCK_MONOTONIC through libc, comparable across processes (and with C programs) on one machine,
 * unlike `performance.now()` whose origin is per process.
 * @module
 */
import { libc } from "./libc.ts";

const CLOCK_MONOTONIC = 1;
const timespec = new BigInt64Array(2);
const timespecWords = new Int32Array(timespec.buffer);

/**
 * Monotonic time in nanoseconds as a double (exact to well below a microsecond for decades of uptime).
 * @example const t = monotonicNs();
 */
export function monotonicNs(): number {
  libc.clock_gettime(CLOCK_MONOTONIC, timespecWords);
  // tv_sec fits in 32 bits for ~68 years of uptime; reading the low word avoids BigInt arithmetic.
  return timespecWords[0]! * 1e9 + timespecWords[2]!;
}
