/**
 * The process around a relay — arguments, environment, output, signals, exit, a config file, a small
 * HTTP endpoint — through each runtime's own API. Why not node:process, node:fs and node:http: on
 * Deno those are polyfills whose modules cost ~5 MiB of resident memory (measured: a relay imports
 * 46.0 MiB without them, 50.9 MiB with them), for a handful of calls.
 * @module
 */

/** Bun's global `process` (Node's shape) and `Bun.serve`; Node has the same `process` and no `Bun`. */
interface BunHost {
  readonly process: {
    readonly argv: string[];
    readonly pid: number;
    readonly env: Record<string, string | undefined>;
    readonly stdout: { write(text: string): boolean };
    readonly stderr: { write(text: string): boolean };
    exit(code: number): never;
    on(signal: string, handler: () => void): void;
    readonly execPath: string;
    readonly execArgv: string[];
    getBuiltinModule(id: string): unknown;
    readonly versions: Record<string, string | undefined>;
  };
  readonly Bun?: { serve(options: { hostname: string; port: number; fetch: (request: Request) => Response | Promise<Response> }): { stop(): void } };
}

/** The part of node:child_process that runs nft and ip. */
type NodeChildProcess = {
  spawnSync(
    program: string,
    args: string[],
    options: { input?: string; encoding: "utf8" },
  ): { status: number | null; stdout: string; stderr: string; error?: Error };
};
/** The part of node:child_process that starts a worker: stdout piped, extra fds mapped from 3 up. */
type NodeSpawn = {
  spawn(
    program: string,
    args: string[],
    options: { stdio: (string | number)[]; env: Record<string, string | undefined> },
  ): {
    readonly pid?: number;
    readonly stdout: { setEncoding(e: "utf8"): void; on(event: "data", f: (chunk: string) => void): void };
    kill(signal: string): boolean;
    on(event: "exit", f: (code: number | null, signal: string | null) => void): void;
    on(event: "error", f: (e: Error) => void): void;
  };
};
/** node:fs, through Bun's or Node's synchronous module access (native on both, not a polyfill). */
type NodeFs = { readFileSync(path: string, encoding: "utf8"): string; readdirSync(path: string): string[] };
/** The part of node:http a Node relay serves /metrics with. */
interface NodeHttp {
  createServer(
    listener: (
      req: { url?: string; method?: string },
      res: { writeHead(status: number, headers: Record<string, string>): void; end(body: string): void },
    ) => void,
  ): {
    listen(port: number, hostname: string): void;
    close(): void;
  };
}

// Deno's types come from @types/deno (tsc) or Deno itself (deno check); Bun's process is Node's shape.
const deno = (globalThis as { Deno?: typeof Deno }).Deno;
const bun = deno ? undefined : (globalThis as unknown as BunHost);
const encoder = new TextEncoder();

function writeAll(stream: { writeSync(bytes: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}

/** The command-line arguments after the script. */
export function commandArgs(): string[] {
  return deno ? deno.args : bun!.process.argv.slice(2);
}

/**
 * An environment variable, or undefined — also where Deno's permissions do not reach it (a build
 * or launcher that grants fewer variables than this version reads): unset, rather than a crash.
 */
export function envVar(name: string): string | undefined {
  if (!deno) return bun!.process.env[name];
  try {
    return deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** This process's id. */
export function processId(): number {
  return deno ? deno.pid : bun!.process.pid;
}

/** Write text to stdout as is (no newline added). */
export function writeStdout(text: string): void {
  if (deno) writeAll(deno.stdout, text);
  else bun!.process.stdout.write(text);
}

/** Write text to stderr as is (no newline added). */
export function writeStderr(text: string): void {
  if (deno) writeAll(deno.stderr, text);
  else bun!.process.stderr.write(text);
}

/** End the process now with `code`. */
export function exitProcess(code: number): never {
  return deno ? deno.exit(code) : bun!.process.exit(code);
}

/**
 * Run `handler` on SIGINT, SIGTERM, SIGHUP or SIGUSR1 instead of dying.
 * @example onSignal("SIGTERM", () => void stop("SIGTERM"));
 */
export function onSignal(signal: "SIGINT" | "SIGTERM" | "SIGHUP" | "SIGUSR1", handler: () => void): void {
  if (deno) deno.addSignalListener(signal, handler);
  else bun!.process.on(signal, handler);
}

/**
 * A whole text file.
 * @throws {Error} when it cannot be read (the message names the OS error).
 */
export function readTextFile(path: string): string {
  if (deno) return deno.readTextFileSync(path);
  return (bun!.process.getBuiltinModule("node:fs") as NodeFs).readFileSync(path, "utf8");
}

/** A running HTTP endpoint. */
export interface HttpEndpoint {
  close(): void;
}

/**
 * Serve `handler` over HTTP on `hostname:port` (the runtime's native server).
 * @example const endpoint = serveHttp("127.0.0.1", 9100, () => new Response("ok\n"));
 */
export function serveHttp(hostname: string, port: number, handler: (request: Request) => Response | Promise<Response>): HttpEndpoint {
  if (deno) {
    const server = deno.serve({ hostname, port, onListen: () => {} }, handler);
    return { close: () => void server.shutdown() };
  }
  if (bun!.Bun) {
    const server = bun!.Bun.serve({ hostname, port, fetch: handler });
    return { close: () => server.stop() };
  }
  // Node: node:http, each request turned into a Request and the Response written back.
  const http = bun!.process.getBuiltinModule("node:http") as NodeHttp;
  const server = http.createServer((req, res) => {
    void Promise.resolve(handler(new Request(`http://${hostname}:${port}${req.url ?? "/"}`, { method: req.method ?? "GET" }))).then(async (response) => {
      const body = await response.text();
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(body);
    });
  });
  server.listen(port, hostname);
  return { close: () => server.close() };
}

/** What a program run to its end printed, and its exit status (127 when it could not start). */
export interface ProgramResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run `argv` to its end with `input` on its stdin (nft and ip for `anysrc rules`; under Deno the
 * launcher allows only those two).
 * @example const r = await runProgram(["nft", "-f", "-"], ruleset); if (r.status !== 0) throw new Error(r.stderr);
 */
export async function runProgram(argv: readonly string[], input?: string): Promise<ProgramResult> {
  const [program, ...args] = argv;
  if (deno) {
    try {
      const child = new deno.Command(program!, { args, stdin: input === undefined ? "null" : "piped", stdout: "piped", stderr: "piped" }).spawn();
      if (input !== undefined) {
        const writer = child.stdin.getWriter();
        await writer.write(encoder.encode(input));
        await writer.close();
      }
      const out = await child.output();
      const decoder = new TextDecoder();
      return { status: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
    } catch (e) {
      return { status: 127, stdout: "", stderr: (e as Error).message };
    }
  }
  const cp = bun!.process.getBuiltinModule("node:child_process") as NodeChildProcess;
  const r = cp.spawnSync(program!, args, { ...(input !== undefined ? { input } : {}), encoding: "utf8" });
  if (r.error) return { status: 127, stdout: "", stderr: r.error.message };
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** When this process started (this module's first evaluation), seconds since the epoch. */
const startedAt = Date.now() / 1000;

/** What the process costs now, from /proc/self: for the `process_*` metrics. */
export interface ProcessUsage {
  readonly cpuSeconds: number;
  readonly residentBytes: number;
  readonly openFds: number;
  readonly startTimeSeconds: number;
}

/**
 * Read {@link ProcessUsage} except CPU (libc's getrusage, in @anysrc/sys); fields that cannot be read
 * are NaN — under Deno the open fds, since /proc/self needs --allow-all there.
 */
export function processUsage(): Omit<ProcessUsage, "cpuSeconds"> {
  const read = (f: () => number) => {
    try {
      return f();
    } catch {
      return Number.NaN;
    }
  };
  if (deno) return { residentBytes: read(() => deno.memoryUsage().rss), openFds: Number.NaN, startTimeSeconds: startedAt };
  const fs = bun!.process.getBuiltinModule("node:fs") as NodeFs;
  return {
    residentBytes: read(() => Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync("/proc/self/status", "utf8"))![1]) * 1024),
    openFds: read(() => fs.readdirSync("/proc/self/fd").length),
    startTimeSeconds: startedAt,
  };
}

/** The runtime running us and its version, e.g. `{ name: "deno", version: "2.9.6" }`. */
export function runtimeVersion(): { readonly name: string; readonly version: string } {
  if (deno) return { name: "deno", version: deno.version.deno };
  const v = bun!.process.versions;
  return v.bun ? { name: "bun", version: v.bun } : { name: "node", version: v.node ?? "unknown" };
}

/** The signals a supervisor sends its workers. */
export type ChildSignal = "SIGTERM" | "SIGINT" | "SIGHUP" | "SIGUSR1" | "SIGKILL";

/** A process started by {@link spawnChild}. */
export interface ChildHandle {
  readonly pid: number;
  /** Resolves when it ends: its exit code, or the signal that ended it. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: string | null }>;
  signal(name: ChildSignal): void;
}

/**
 * The command that starts this CLI again: the launcher (bin/anysrc, which exports
 * ANYSRC_LAUNCHER and computes Deno's permissions per command), else this executable (a compiled
 * one), else the runtime with this script. Undefined for an uncompiled Deno outside the launcher:
 * its permissions are not known here.
 */
export function selfCommand(): string[] | undefined {
  const launcher = envVar("ANYSRC_LAUNCHER");
  if (launcher) return [launcher];
  if (deno) return deno.mainModule.includes("deno-compile-") ? [deno.execPath()] : undefined;
  const script = bun!.process.argv[1] ?? "";
  return script.startsWith("/$bunfs/") ? [bun!.process.execPath] : [bun!.process.execPath, ...bun!.process.execArgv, script];
}

/**
 * Where {@link spawnChild} puts `passFds` in the child: Bun and Node map them to 3, 4, …; Deno's
 * spawn cannot, so there the caller clears their close-on-exec flag around the spawn
 * ({@link spawnKeepsFdNumbers}) and the child finds them at the same numbers.
 * @example childFdNumbers([17, 18]) // [3, 4] on Bun and Node, [17, 18] on Deno
 */
export function childFdNumbers(passFds: readonly number[]): number[] {
  return deno ? [...passFds] : passFds.map((_, i) => 3 + i);
}

/**
 * Start `argv` with stdout piped to `onLine` (line by line), stderr shared, `env` added to ours, and
 * `passFds` handed over (at {@link childFdNumbers} in the child).
 * @example const child = spawnChild(["anysrc", "tproxy", …], { ANYSRC_WORKER: "0/2:3" }, [5], console.log);
 */
export function spawnChild(
  argv: readonly string[],
  env: Record<string, string>,
  passFds: readonly number[],
  onLine: (line: string) => void,
): ChildHandle {
  const [program, ...args] = argv;
  let pending = "";
  const feed = (chunk: string) => {
    pending += chunk;
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  };
  if (deno) {
    const child = new deno.Command(program!, { args, env, stdin: "null", stdout: "piped", stderr: "inherit" }).spawn();
    void (async () => {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) feed(chunk);
    })();
    return {
      pid: child.pid,
      exited: child.status.then((s) => ({ code: s.signal ? null : s.code, signal: s.signal ?? null })),
      signal: (name) => {
        try {
          child.kill(name);
        } catch { /* already gone */ }
      },
    };
  }
  const cp = bun!.process.getBuiltinModule("node:child_process") as NodeSpawn;
  const child = cp.spawn(program!, args, { stdio: ["ignore", "pipe", "inherit", ...passFds], env: { ...bun!.process.env, ...env } });
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", feed);
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.on("exit", (code, signal) => resolve({ code, signal }));
    child.on("error", () => resolve({ code: 127, signal: null }));
  });
  return { pid: child.pid ?? -1, exited, signal: (name) => void child.kill(name) };
}

/** True where {@link spawnChild} hands fds over at their own numbers (Deno): clear FD_CLOEXEC around the spawn. */
export function spawnKeepsFdNumbers(): boolean {
  return deno !== undefined;
}
