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

/** `pid` and every process below it (children's children too), from /proc/PID/task/TID/children. */
export function processTree(pid: number): number[] {
  const found = [pid];
  for (let i = 0; i < found.length; i++) {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${found[i]}/task`);
    } catch {
      continue; // ended meanwhile
    }
    for (const tid of tasks) {
      try {
        for (const child of readFileSync(`/proc/${found[i]}/task/${tid}/children`, "utf8").trim().split(/\s+/)) if (child) found.push(Number(child));
      } catch { /* thread ended meanwhile */ }
    }
  }
  return found;
}

/** {@link cpuTimes} summed over {@link processTree}: a supervisor and its workers as one relay. */
export function treeCpuTimes(pid: number): { user: number; system: number } {
  let user = 0;
  let system = 0;
  for (const p of processTree(pid)) {
    try {
      const t = cpuTimes(p);
      user += t.user;
      system += t.system;
    } catch { /* ended meanwhile */ }
  }
  return { user, system };
}

/** Resident memory (VmRSS) of {@link processTree}, MiB. */
export function treeResidentMiB(pid: number): number {
  let sum = 0;
  for (const p of processTree(pid)) {
    try {
      sum += memoryMiB(p).current;
    } catch { /* ended meanwhile */ }
  }
  return sum;
}

/**
 * CPU seconds the whole machine has spent busy so far, every CPU (/proc/stat: user, nice, system,
 * irq, softirq, steal): with the relay's own taken away, what the testbed costs — generators, echo
 * servers and the kernel's forwarding between namespaces.
 */
export function machineBusySeconds(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) / 100;
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
