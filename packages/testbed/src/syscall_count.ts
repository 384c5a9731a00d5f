/**
 * Syscalls of a running process, counted by perf's syscall tracepoints (root and tracefs needed):
 * the benchmark's syscalls-per-datagram column and the profile script use the same count.
 * @module
 */
import { execFile, execFileSync, spawnSync } from "node:child_process";

/** The syscalls counted by name; every other one is in `total` only. */
export const TRACED_SYSCALLS = [
  "recvmmsg",
  "recvmsg",
  "recvfrom",
  "sendmmsg",
  "sendmsg",
  "sendto",
  "write",
  "writev",
  "read",
  "epoll_wait",
  "epoll_pwait",
  "epoll_ctl",
  "futex",
  "getsockopt",
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
  return new Promise((resolve) =>
    execFile(
      "perf",
      ["stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "--", "true"],
      (e, _o, err) => resolve(!e && /raw_syscalls/.test(String(err)) && !/not supported/.test(String(err))),
    )
  );
}

/** Environment that makes the runtimes name their JIT code for perf (Deno's perf map, Bun's jitdump). */
export const PERF_JIT_ENV: Readonly<Record<string, string>> = { DENO_V8_FLAGS: "--perf-basic-prof", BUN_JSC_useJITDump: "1", BUN_JSC_jitDumpDirectory: "/tmp" };

/** Sample `pid` (every thread, call graphs) for `seconds` into `file` with `perf record`. */
export function recordProfile(pid: number, seconds: number, file: string): void {
  spawnSync("perf", ["record", "-k", "mono", "-F", "4999", "-g", "-o", file, "-p", String(pid), "--", "sleep", String(seconds)]);
}

/** The `top` hottest symbols of a recorded profile (self time, by DSO and symbol). */
export function hottestSymbols(file: string, top: number): string {
  const report = execFileSync("perf", ["report", "-i", file, "--no-children", "--sort", "dso,symbol", "--stdio", "-g", "none", "--percent-limit", "0.4"], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  return report.split("\n").filter((l) => l && !l.startsWith("#")).slice(0, top).join("\n");
}
