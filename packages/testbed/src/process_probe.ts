/**
 * What a running process costs, read from /proc: CPU seconds (all threads), peak and current RSS,
 * open file descriptors.
 * @module
 */
import { readFileSync, readdirSync } from "node:fs";

/** CPU seconds (user + system, every thread) used so far by `pid`. */
export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.system;
}

/** CPU seconds in user and in kernel mode (every thread) used so far by `pid`. */
export function cpuTimes(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 }; // utime, stime in USER_HZ (100) ticks
}

/** Peak (VmHWM) and current (VmRSS) resident memory of `pid`, in MiB. */
export function memoryMiB(pid: number): { peak: number; current: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
  return { peak: kb("VmHWM") / 1024, current: kb("VmRSS") / 1024 };
}

/** Open file descriptors of `pid`. */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
