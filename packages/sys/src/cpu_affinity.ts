/**
 * Which CPUs a thread may run on (sched_getaffinity / sched_setaffinity): `--workers auto` starts
 * one worker per CPU this process may use, and pins each to its own.
 * @module
 */
import { check, libc } from "./libc.ts";

/** Room for 1024 CPUs (glibc's cpu_set_t); a larger machine's kernel answers EINVAL, said as such. */
const MASK_BYTES = 128;

/**
 * The CPUs the calling thread may run on, ascending (under `taskset -c 2,3`: `[2, 3]`).
 * @example allowedCpus() // [0, 1]
 */
export function allowedCpus(): number[] {
  const mask = new Uint8Array(MASK_BYTES);
  check(libc.sched_getaffinity(0, MASK_BYTES, mask), "sched_getaffinity");
  const cpus: number[] = [];
  for (let cpu = 0; cpu < MASK_BYTES * 8; cpu++) if (mask[cpu >> 3]! & (1 << (cpu & 7))) cpus.push(cpu);
  return cpus;
}

/**
 * Restrict the calling thread (`pid` 0) or a process's main thread to `cpus`. Threads and processes
 * started afterwards inherit the mask: a supervisor sets its own, spawns a worker, and sets it back.
 * @example pinToCpus(0, [1]);
 */
export function pinToCpus(pid: number, cpus: readonly number[]): void {
  const mask = new Uint8Array(MASK_BYTES);
  for (const cpu of cpus) mask[cpu >> 3] = mask[cpu >> 3]! | (1 << (cpu & 7));
  check(libc.sched_setaffinity(pid, MASK_BYTES, mask), "sched_setaffinity", undefined, cpus.join(","));
}
