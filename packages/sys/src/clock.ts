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

const RUSAGE_SELF = 0;
// struct rusage: ru_utime, ru_stime (struct timeval: i64 seconds, i64 microseconds), then 14 longs.
const rusage = new Int32Array(36);

/**
 * CPU seconds this process has spent in user and in kernel mode, every thread (getrusage), for the
 * `process_cpu_seconds_total` metric: the same on every runtime, where /proc may be closed (Deno
 * asks for --allow-all to read /proc/self).
 * @example const { user, system } = processCpuSeconds();
 */
export function processCpuSeconds(): { user: number; system: number } {
  if (libc.getrusage(RUSAGE_SELF, rusage) !== 0) return { user: Number.NaN, system: Number.NaN };
  // Seconds fit in the low 32 bits for decades of CPU time.
  return { user: rusage[0]! + rusage[2]! / 1e6, system: rusage[4]! + rusage[6]! / 1e6 };
}
