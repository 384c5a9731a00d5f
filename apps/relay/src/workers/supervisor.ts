/**
 * `--workers N`: one service from the outside, N relay processes inside. The supervisor opens every
 * worker's listening sockets itself (one per listen address and worker, all in one SO_REUSEPORT
 * group per address) and keeps them for the service's life; each worker is the same command started
 * again with its sockets handed over (worker_role.ts).
 *
 * Why the supervisor holds the sockets: the kernel picks a group member for a TPROXY'd datagram by a
 * hash of the client's address over the group's member list (docs/ARCHITECTURE.md, "Workers"). A
 * worker that closed its socket on dying would shrink the list and move every client. Held here, a
 * crashed worker's socket keeps its place and its queue; the restarted worker reads the same socket,
 * so no other worker's clients move and the dead one's find their worker again.
 *
 * Processes, not threads: a worker that crashes (a fault in a native call included) takes nothing
 * else down. Stats, the final counters and /metrics are the workers' own, gathered on demand (a
 * SIGUSR1 to each, whose JSON stats line comes back on its stdout) and summed.
 * @module
 */
import { closeFd, pinToCpus, setInheritable } from "@anysrc/sys";
import { childFdNumbers, type ChildHandle, type ChildSignal, onSignal, processId, selfCommand, spawnChild, spawnKeepsFdNumbers, writeStdout } from "../host.ts";
import { prometheusTextOf, statsLine } from "../relay_stats.ts";
import { logEvent, notifyService, processFacts, serveMetrics, type StatsSettings } from "../cli/relay_runner.ts";
import { countersOfSnapshot, sumSnapshots, type WorkerSnapshot } from "./worker_stats.ts";
import { WORKER_ENV, type WorkerCount, workerEnvValue } from "./worker_role.ts";
import { UsageError } from "../cli/usage_error.ts";

/** What the supervisor runs. */
export interface SupervisorPlan {
  readonly mode: "tproxy" | "forward";
  /** The command's own arguments; every worker gets them as they are (it ignores --workers, --rules, --metrics). */
  readonly args: readonly string[];
  readonly workers: WorkerCount;
  readonly stats: StatsSettings;
  /** Each worker's listening sockets, one per listen address, bound in their reuseport groups; closed when the service ends. */
  readonly listeners: readonly (readonly number[])[];
  /** Releases what else was held for the service's life (a multi-queue TUN device's first queue). */
  readonly release?: () => void;
  /** Fields of the service's `listening` event. */
  readonly listening: Record<string, unknown>;
}

/** Restart back-off: 100 ms doubling to 5 s; a worker that ran 10 s before dying starts again at 100 ms. */
const FIRST_DELAY_MS = 100;
const LONGEST_DELAY_MS = 5000;
const STEADY_MS = 10_000;
/** Workers that die this many times in a row before listening: the service cannot be kept up. */
const FAILURES_TO_GIVE_UP = 5;
/** How long a worker has to answer a stats request, and to stop after SIGTERM before SIGKILL. */
const STATS_TIMEOUT_MS = 2000;
const STOP_TIMEOUT_MS = 15_000;

/** One worker's place: its sockets (held here), its current process and what it last said. */
interface WorkerSlot {
  readonly index: number;
  readonly fds: readonly number[];
  readonly cpu: number | undefined;
  child?: ChildHandle | undefined;
  ready: boolean;
  startedAt: number;
  restarts: number;
  failuresInARow: number;
  delayMs: number;
  last?: WorkerSnapshot | undefined;
  final?: WorkerSnapshot | undefined;
  waiters: ((s: WorkerSnapshot) => void)[];
}

/** The running service. */
interface Service {
  readonly plan: SupervisorPlan;
  readonly slots: WorkerSlot[];
  readonly argv: readonly string[];
  up: boolean;
  stopping: boolean;
  finish: (status: number) => void;
}

/**
 * Run `plan.workers.count` workers as one service until SIGINT/SIGTERM (exit 0) or until workers
 * cannot be kept alive (exit 1, or a worker's own status when one fails at start).
 * @example await superviseWorkers({ mode: "tproxy", args, workers: { count: 2 }, stats, openListeners, listening: {} });
 */
export async function superviseWorkers(plan: SupervisorPlan): Promise<number> {
  const closeAll = () => {
    plan.listeners.flat().forEach(closeFd);
    plan.release?.();
  };
  const self = selfCommand();
  if (!self) {
    closeAll();
    throw new UsageError(plan.mode, "--workers needs the anysrc launcher (bin/anysrc), or a compiled anysrc: it starts each worker through it");
  }
  const slots: WorkerSlot[] = plan.listeners.map((fds, index) => ({
    index,
    fds,
    cpu: plan.workers.cpus?.[index],
    ready: false,
    startedAt: 0,
    restarts: 0,
    failuresInARow: 0,
    delayMs: FIRST_DELAY_MS,
    waiters: [],
  }));
  const status = await new Promise<number>((finish) => {
    const service: Service = { plan, slots, argv: [...self, plan.mode, ...plan.args], up: false, stopping: false, finish };
    handleSignals(service);
    for (const slot of slots) startWorker(service, slot);
  });
  closeAll();
  return status;
}

/** Start (or restart) the process of one slot, pinned to its CPU if it has one. */
function startWorker(service: Service, slot: WorkerSlot): void {
  const { plan } = service;
  const keepNumbers = spawnKeepsFdNumbers();
  // A process inherits the CPU mask of the thread that forks it: narrow ours for the spawn only.
  const ours = slot.cpu !== undefined ? plan.workers.cpus! : undefined;
  if (slot.cpu !== undefined) pinToCpus(0, [slot.cpu]);
  if (keepNumbers) slot.fds.forEach((fd) => setInheritable(fd, true));
  try {
    // NOTIFY_SOCKET emptied: systemd hears the service (this process), not each worker.
    const env = { [WORKER_ENV]: workerEnvValue(slot.index, plan.workers.count, childFdNumbers(slot.fds)), NOTIFY_SOCKET: "" };
    slot.child = spawnChild(service.argv, env, slot.fds, (line) => onWorkerLine(service, slot, line));
  } finally {
    if (keepNumbers) slot.fds.forEach((fd) => setInheritable(fd, false));
    if (ours) pinToCpus(0, ours);
  }
  slot.ready = false;
  slot.startedAt = Date.now();
  slot.last = undefined;
  slot.final = undefined;
  const child = slot.child;
  void child.exited.then((end) => onWorkerExit(service, slot, child, end));
}

/** A line a worker printed: its stats and final counters are kept, its events said again with its index. */
function onWorkerLine(service: Service, slot: WorkerSlot, line: string): void {
  let fields: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
    fields = parsed as Record<string, unknown>;
  } catch {
    writeStdout(`${line}\n`);
    return;
  }
  const { event, time: _time, ...rest } = fields;
  if (event === "stats") {
    slot.last = fields;
    for (const w of slot.waiters.splice(0)) w(fields);
  } else if (event === "final") slot.final = fields;
  else if (event === "listening") onWorkerListening(service, slot, rest);
  else logEvent(service.plan.stats.format, String(event), { worker: slot.index, ...rest });
}

function onWorkerListening(service: Service, slot: WorkerSlot, fields: Record<string, unknown>): void {
  const { plan, slots } = service;
  slot.ready = true;
  slot.failuresInARow = 0;
  if (service.up) {
    slot.restarts++;
    logEvent(plan.stats.format, "worker-restarted", { worker: slot.index, pid: slot.child?.pid, restarts: slot.restarts });
    return;
  }
  if (!slots.every((s) => s.ready)) return;
  service.up = true;
  const { pid: _pid, ...settings } = fields;
  logEvent(plan.stats.format, "listening", {
    pid: processId(),
    ...settings,
    ...plan.listening,
    workers: slots.map((s) => ({ worker: s.index, pid: s.child?.pid, ...(s.cpu !== undefined ? { cpu: s.cpu } : {}) })),
  });
  notifyService(plan.stats.format, `READY=1\nMAINPID=${processId()}\nSTATUS=${plan.mode}: ${slots.length} workers listening`);
}

/** A worker ended: at start that ends the service; later it is restarted with back-off, until it keeps failing. */
function onWorkerExit(service: Service, slot: WorkerSlot, child: ChildHandle, end: { code: number | null; signal: string | null }): void {
  if (slot.child !== child) return;
  slot.child = undefined;
  for (const w of slot.waiters.splice(0)) w(slot.last ?? {});
  if (service.stopping) return;
  const format = service.plan.stats.format;
  logEvent(format, "worker-exited", { worker: slot.index, pid: child.pid, code: end.code, signal: end.signal });
  if (!service.up) {
    // It could not start: neither will the others (a bad setting, a missing privilege). Its own
    // message went to stderr.
    void stopService(service, `worker ${slot.index} failed to start`, end.code === null || end.code === 0 ? 1 : end.code);
    return;
  }
  if (!slot.ready) slot.failuresInARow++;
  if (slot.failuresInARow >= FAILURES_TO_GIVE_UP) {
    logEvent(format, "error", { error: `worker ${slot.index} exited ${slot.failuresInARow} times in a row before listening`, action: "stopping" });
    void stopService(service, "workers-failing", 1);
    return;
  }
  if (Date.now() - slot.startedAt >= STEADY_MS) slot.delayMs = FIRST_DELAY_MS;
  const delay = slot.delayMs;
  slot.delayMs = Math.min(slot.delayMs * 2, LONGEST_DELAY_MS);
  setTimeout(() => {
    if (!service.stopping) startWorker(service, slot);
  }, delay);
}

/** Send a signal to every worker that runs. */
function signalAll(service: Service, name: ChildSignal): void {
  for (const s of service.slots) s.child?.signal(name);
}

/** Each running worker's counters, fresh: a SIGUSR1 to each, answered by its JSON stats line. */
function collect(service: Service): Promise<{ slot: WorkerSlot; snapshot: WorkerSnapshot }[]> {
  return Promise.all(
    service.slots.filter((s) => s.child && s.ready).map((slot) =>
      new Promise<{ slot: WorkerSlot; snapshot: WorkerSnapshot }>((resolve) => {
        const timer = setTimeout(() => resolve({ slot, snapshot: slot.last ?? {} }), STATS_TIMEOUT_MS);
        slot.waiters.push((snapshot) => {
          clearTimeout(timer);
          resolve({ slot, snapshot });
        });
        slot.child!.signal("SIGUSR1");
      })
    ),
  ).then((all) => all.filter((w) => Object.keys(w.snapshot).length > 0));
}

/** Print the service's counters (the sum) and each worker's: one text line each, or one JSON object. */
function printStats(service: Service, event: "stats" | "final", workers: { slot: WorkerSlot; snapshot: WorkerSnapshot }[], lead = ""): void {
  const { mode, stats } = service.plan;
  const sum = sumSnapshots(workers.map((w) => w.snapshot));
  if (stats.format === "json") {
    const perWorker = workers.map((w) => ({ worker: w.slot.index, ...sumSnapshots([w.snapshot]), process: w.snapshot.process }));
    console.log(JSON.stringify({ event, time: new Date().toISOString(), ...(lead ? { signal: lead } : {}), worker: "all", ...sum, workers: perWorker }));
    return;
  }
  const head = `event=${event}${lead ? ` signal=${lead}` : ""}`;
  const all = countersOfSnapshot(sum);
  console.log(statsLine(mode, all.counters, all.transports, `${head} worker=all workers=${workers.length}`));
  for (const w of workers) {
    const one = countersOfSnapshot(w.snapshot);
    console.log(statsLine(mode, one.counters, one.transports, `${head} worker=${w.slot.index}`));
  }
}

/** /metrics: the sum under `worker="all"`, each worker under its index, and each worker's process. */
async function metricsText(service: Service): Promise<string> {
  const workers = await collect(service);
  const sum = countersOfSnapshot(sumSnapshots(workers.map((w) => w.snapshot)));
  const sets = [
    { labels: { worker: "all" }, ...sum },
    ...workers.map((w) => ({ labels: { worker: String(w.slot.index) }, ...countersOfSnapshot(w.snapshot) })),
  ];
  return prometheusTextOf(service.plan.mode, sets, processFacts(), (metric) => {
    const each = (value: (s: WorkerSlot) => number) => service.slots.map((s): [Record<string, string>, number] => [{ worker: String(s.index) }, value(s)]);
    const facts = (s: WorkerSlot) => (workers.find((w) => w.slot === s)?.snapshot.process ?? {}) as { residentBytes?: number; cpuSeconds?: number };
    metric("worker_up", "gauge", "1 while a worker runs and listens.", each((s) => (s.child && s.ready ? 1 : 0)));
    metric("worker_restarts_total", "counter", "Times a worker was restarted after it exited.", each((s) => s.restarts));
    metric("worker_resident_memory_bytes", "gauge", "A worker's resident memory, bytes.", each((s) => facts(s).residentBytes ?? Number.NaN));
    metric("worker_cpu_seconds_total", "counter", "A worker's user and system CPU time, seconds.", each((s) => facts(s).cpuSeconds ?? Number.NaN));
  });
}

/** SIGHUP to every worker; SIGUSR1 prints the counters; SIGINT/SIGTERM stop the service; periodic stats; /metrics. */
function handleSignals(service: Service): void {
  const { stats } = service.plan;
  const print = () => void collect(service).then((w) => printStats(service, "stats", w));
  const timer = stats.intervalMs > 0 ? setInterval(print, stats.intervalMs) : undefined;
  const server = stats.metrics ? serveMetrics(stats.metrics, () => metricsText(service)) : undefined;
  const finish = service.finish;
  service.finish = (status) => {
    if (timer) clearInterval(timer);
    server?.close();
    finish(status);
  };
  onSignal("SIGHUP", () => signalAll(service, "SIGHUP"));
  onSignal("SIGUSR1", print);
  onSignal("SIGINT", () => void stopService(service, "SIGINT", 0));
  onSignal("SIGTERM", () => void stopService(service, "SIGTERM", 0));
}

/**
 * Stop every worker (SIGTERM: each stops reading, flushes and prints its final counters), SIGKILL
 * what has not ended in 15 s, print the service's final counters, and end with `status`.
 */
async function stopService(service: Service, reason: string, status: number): Promise<void> {
  if (service.stopping) return;
  service.stopping = true;
  notifyService(service.plan.stats.format, `STOPPING=1\nSTATUS=stopping (${reason})`);
  const running = service.slots.filter((s) => s.child).map((slot) => ({ slot, child: slot.child! }));
  for (const r of running) r.child.signal("SIGTERM");
  const killer = setTimeout(() => signalAll(service, "SIGKILL"), STOP_TIMEOUT_MS);
  await Promise.all(running.map((r) => r.child.exited));
  clearTimeout(killer);
  const finals = running.filter((r) => r.slot.final).map((r) => ({ slot: r.slot, snapshot: r.slot.final! }));
  if (service.up) printStats(service, "final", finals, reason);
  service.finish(status);
}
