/**
 * What a running process costs, read from /proc: CPU seconds (all threads), peak and current RSS,
 * open file descriptors; and how to start one with room for many of them.
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";

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

/**
 * Resident memory of `pid` in MiB: peak (VmHWM) and current (VmRSS), and the current split into
 * anonymous pages (heaps, buffers) and file-backed ones (the runtime's binary and libraries).
 */
export function memoryMiB(pid: number): { peak: number; current: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
  return { peak: kb("VmHWM") / 1024, current: kb("VmRSS") / 1024, anon: kb("RssAnon") / 1024, file: kb("RssFile") / 1024 };
}

/**
 * `argv` run with its soft open-file limit raised toward `fds` (up to the hard limit the host
 * allows): a relay holding many sessions, or the generator that opens their client sockets.
 * @example bed.spawn(bed.router, withFdLimit(11_024, relayArgv))
 */
export function withFdLimit(fds: number, argv: readonly string[]): string[] {
  return ["sh", "-c", `ulimit -n $(( $(ulimit -Hn) < ${fds} ? $(ulimit -Hn) : ${fds} )) && exec "$@"`, "sh", ...argv];
}

/** Open file descriptors of `pid`. */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** One thread's CPU seconds and context switches so far. */
export interface ThreadTimes {
  readonly tid: string;
  readonly name: string;
  readonly user: number;
  readonly system: number;
  /** Voluntary switches: the times it slept and was woken. */
  readonly voluntary: number;
  readonly involuntary: number;
}

/** Every thread of `pid`, from /proc/PID/task. */
export function threadTimes(pid: number): ThreadTimes[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").split(") ");
    const f = stat[1]!.split(" ");
    const n = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
    return {
      tid,
      name: stat[0]!.split(" (")[1] ?? "",
      user: Number(f[11]) / 100,
      system: Number(f[12]) / 100,
      voluntary: n("voluntary_ctxt_switches"),
      involuntary: n("nonvoluntary_ctxt_switches"),
    };
  });
}

/**
 * Per-thread lines between two {@link threadTimes} readings: CPU µs per unit of work (`units` of it
 * done meanwhile, over `seconds`), wake-ups per second; idle threads are left out.
 * @example threadReport(t0, threadTimes(pid), relayed, 2.5).forEach((l) => console.log(l))
 */
export function threadReport(before: readonly ThreadTimes[], after: readonly ThreadTimes[], units: number, seconds: number): string[] {
  const lines: string[] = [];
  for (const b of after) {
    const a = before.find((x) => x.tid === b.tid);
    if (!a) continue;
    const cpu = ((b.user - a.user + b.system - a.system) * 1e6) / units;
    if (cpu < 0.01 && b.voluntary === a.voluntary) continue;
    lines.push(
      `  thread ${b.tid} ${b.name}: ${cpu.toFixed(2)} µs/datagram, wake-ups ${((b.voluntary - a.voluntary) / seconds).toFixed(0)}/s (${
        ((b.voluntary - a.voluntary) / units).toFixed(3)
      }/datagram), preempted ${((b.involuntary - a.involuntary) / seconds).toFixed(0)}/s`,
    );
  }
  return lines;
}
