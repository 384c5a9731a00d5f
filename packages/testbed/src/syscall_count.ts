/**
 * Syscalls of a running process, counted by perf's syscall tracepoints (root and tracefs needed):
 * the benchmark's syscalls-per-datagram column and the profile script use the same count.
 * @module
 */
import { execFile } from "node:child_process";

/** The syscalls counted by name; every other one is in `total` only. */
export const TRACED_SYSCALLS = [
  "recvmmsg", "recvmsg", "recvfrom", "sendmmsg", "sendmsg", "sendto", "write", "writev", "read", "epoll_wait", "epoll_pwait", "epoll_ctl", "futex", "getsockopt",
] as const;

/**
 * Count `pid`'s syscalls (every thread) for `seconds`: `total` and one entry per traced name seen.
 * @example const counts = await countSyscalls(relay.pid, 1); counts.total / datagrams
 */
export function countSyscalls(pid: number, seconds: number): Promise<Record<string, number>> {
  const events = ["raw_syscalls:sys_enter", ...TRACED_SYSCALLS.map((n) => `syscalls:sys_enter_${n}`)];
  return new Promise((resolve) => {
    // perf stat reports on stderr, one CSV line per event: value,unit,event,…
    execFile("perf", ["stat", "-x", ",", "-e", events.join(","), "-p", String(pid), "--", "sleep", String(seconds)], (_e, _out, err) => {
      const counts: Record<string, number> = {};
      for (const line of String(err).split("\n")) {
        const [value, , event] = line.split(",");
        if (!event || !/^\d+$/.test(value ?? "")) continue;
        counts[event === "raw_syscalls:sys_enter" ? "total" : event.replace("syscalls:sys_enter_", "")] = Number(value);
      }
      resolve(counts);
    });
  });
}

/** Whether perf can count syscall tracepoints here. */
export function canCountSyscalls(): Promise<boolean> {
  return new Promise((resolve) => execFile("perf", ["stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "--", "true"], (e, _o, err) => resolve(!e && /raw_syscalls/.test(String(err)) && !/not supported/.test(String(err)))));
}
