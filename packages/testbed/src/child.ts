/**
 * Child processes that speak JSON lines on stdout, for test orchestration: wait for a line that
 * matches, collect the rest, and end them by PID.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";

/** A spawned process with its parsed stdout lines. */
export interface JsonChild {
  readonly pid: number;
  readonly lines: Record<string, unknown>[];
  /** stderr so far, for failure messages. */
  stderr(): string;
  /** Resolve with the first line (already seen or future) that satisfies `match`. */
  waitFor(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolve with the exit code once it ends. */
  exited(timeoutMs?: number): Promise<number | null>;
  /** SIGTERM (then SIGKILL after a grace period) to this PID only. */
  stop(): Promise<void>;
}

/**
 * Spawn `argv`, parsing each stdout line as JSON (non-JSON lines are kept as `{ text }`).
 * @example const c = spawnJson(["ip", "netns", "exec", ns, ...runtimeArgv("bun", script, [])]);
 */
export function spawnJson(argv: readonly string[], env: Record<string, string> = {}): JsonChild {
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  const lines: Record<string, unknown>[] = [];
  const waiters: { match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let err = "";
  let buffered = "";
  let exitCode: number | null | undefined;
  const exitWaiters: ((c: number | null) => void)[] = [];
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const text = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!text) continue;
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        line = { text };
      }
      lines.push(line);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i]!.match(line)) waiters.splice(i, 1)[0]!.resolve(line);
      }
    }
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => (err += chunk));
  child.on("exit", (code, signal) => {
    exitCode = code ?? (signal ? -1 : null);
    for (const w of exitWaiters.splice(0)) w(exitCode);
  });
  const describe = () => `pid ${child.pid} (${argv.slice(-4).join(" ")}); stderr: ${err.slice(-2000) || "(empty)"}; stdout: ${JSON.stringify(lines.slice(-5))}`;
  const self: JsonChild = {
    pid: child.pid ?? -1,
    lines,
    stderr: () => err,
    waitFor(match, timeoutMs = 30_000) {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for a line from ${describe()}`)), timeoutMs);
        waiters.push({
          match,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
        if (exitCode !== undefined) {
          clearTimeout(timer);
          reject(new Error(`process exited (${exitCode}) before the expected line: ${describe()}`));
        }
        exitWaiters.push((c) => {
          clearTimeout(timer);
          reject(new Error(`process exited (${c}) before the expected line: ${describe()}`));
        });
      });
    },
    exited(timeoutMs = 30_000) {
      if (exitCode !== undefined) return Promise.resolve(exitCode);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for exit of ${describe()}`)), timeoutMs);
        exitWaiters.push((c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
    },
    async stop() {
      if (exitCode !== undefined || child.pid === undefined) return;
      child.kill("SIGTERM");
      const done = await Promise.race([self.exited(3000).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]).catch(() => false);
      if (!done && exitCode === undefined) child.kill("SIGKILL");
    },
  };
  return self;
}
