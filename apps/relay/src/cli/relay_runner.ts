/**
 * What tproxy and forward share once running: the transports (primary + optional fallback), periodic
 * stats lines, the optional Prometheus endpoint, and the SIGINT/SIGTERM shutdown: stop reading, flush,
 * print the final counters, exit 0.
 * @module
 */
import { type Datagram, formatSocketAddress, isV4Mapped, type SocketAddress, type Transport } from "@anysrc/core";
import { getPoller, notifyServiceManager, processCpuSeconds, readProcFile, unprivilegedPortStart } from "@anysrc/sys";
import { requirePrivileges } from "../capability_check.ts";
import { ANYSRC_VERSION, logfmtValue, type ProcessFacts, prometheusText, type RelayCounters, statsLine, statsSnapshot } from "../relay_stats.ts";
import { createOutbound, type Outbound } from "../outbound.ts";
import { openTransport, type TransportKind, type TransportSettings } from "../transport_choice.ts";
import type { TransportFlags } from "./relay_flags.ts";
import { UsageError } from "./usage_error.ts";
import { envVar, type HttpEndpoint, onSignal, processId, processUsage, runtimeVersion, serveHttp } from "../host.ts";

/** How stats leave the process. */
export interface StatsSettings {
  readonly intervalMs: number;
  readonly format: "text" | "json";
  readonly metrics?: SocketAddress;
  /** Set in a worker of `--workers N`: every stats line is JSON for the supervisor, with this index and the process's facts. */
  readonly worker?: number;
}

/** Open the primary transport and, when asked, the fallback. */
function openTransports(kind: TransportKind, fallback: TransportKind | undefined, settings: TransportSettings): { primary: Transport; fallback?: Transport } {
  const primary = openTransport(kind, settings);
  if (!fallback) return { primary };
  try {
    // Only the primary hands back datagrams that arrive on bound source sockets.
    const { onReceive: _onReceive, ...rest } = settings;
    return { primary, fallback: openTransport(fallback, rest) };
  } catch (e) {
    void primary.close();
    throw e;
  }
}

/**
 * Everything tproxy and forward share before they listen: check the capabilities the run needs,
 * open the transports (primary, optional fallback), and wrap them in the outbound, whose TUN-gone
 * event asks `shutdown` to stop when there is no fallback.
 */
export function openRelayOutput(
  t: TransportFlags,
  stats: StatsSettings,
  counters: RelayCounters,
  o: { readonly transparentListeners: boolean; readonly onReceive?: (d: Datagram) => void; readonly broadcast?: boolean; readonly multiQueue?: boolean },
): { outbound: Outbound; shutdown: ReturnType<typeof createShutdown> } {
  checkRelayPrivileges(t, o.transparentListeners);
  const { primary, fallback } = openTransports(t.kind, t.fallback, {
    ...(t.mark !== undefined ? { mark: t.mark } : {}),
    ...(t.tun !== undefined ? { tun: t.tun } : {}),
    ...(t.mtu !== undefined ? { mtu: t.mtu } : {}),
    ...(o.onReceive ? { onReceive: o.onReceive } : {}),
    offload: t.offload,
    multiQueue: o.multiQueue === true,
    broadcast: o.broadcast === true,
    onOffloadFallback: (reason) => logEvent(stats.format, "offload-fallback", { reason }),
  });
  const shutdown = createShutdown();
  const outbound = createOutbound(primary, fallback, counters, onTransportGone(stats.format, fallback !== undefined, shutdown));
  if (t.kind === "tun" || t.fallback === "tun") warnFragmentDistance(stats.format);
  return { outbound, shutdown };
}

/**
 * Fail early, with what to grant, when the run needs privileges this process lacks: the transports,
 * transparent listeners, SO_MARK, low source ports.
 */
export function checkRelayPrivileges(t: TransportFlags, transparentListeners: boolean): void {
  requirePrivileges({
    transports: t.fallback ? [t.kind, t.fallback] : [t.kind],
    transparentListeners,
    mark: t.mark !== undefined,
    lowPortSources: t.kind === "bindsrc" && t.fallback !== "raw" && unprivilegedPortStart() > 1,
  });
}

/**
 * TUN-injected IPv4 fragments are reassembled by the host where netfilter defrag is loaded (TPROXY
 * loads it), and that reassembly drops fragment trains its per-source distance heuristic
 * (net.ipv4.ipfrag_max_dist, default 64) distrusts: with the remote's own fragments sharing the
 * spoofed source, a few datagrams over the MTU are lost under load, with no counter of ours to
 * show it (the kernel's is IpReasmFails). Say so once at start.
 */
function warnFragmentDistance(format: "text" | "json"): void {
  const value = readProcFile("/proc/sys/net/ipv4/ipfrag_max_dist")?.trim();
  if (value === undefined) return;
  if (value !== "0") {
    logEvent(format, "warning", {
      warning:
        `net.ipv4.ipfrag_max_dist is ${value}: under load the kernel may drop some fragmented IPv4 replies of the tun transport (counted in nstat IpReasmFails); set it to 0 (sysctl -w net.ipv4.ipfrag_max_dist=0)`,
    });
  }
}

/**
 * Tell systemd (a `Type=notify` unit: `$NOTIFY_SOCKET` set) how the relay is: `READY=1` once it
 * listens, `RELOADING=1` then `READY=1` around a reload, `STOPPING=1` when it stops. Without the
 * variable nothing is sent; a failed send is said once.
 * @example notifyService("text", "READY=1")
 */
export function notifyService(format: "text" | "json", state: string): void {
  const socket = envVar("NOTIFY_SOCKET");
  if (!socket) return;
  const failed = notifyServiceManager(socket, state);
  if (failed && !notifyFailed) {
    notifyFailed = true;
    logEvent(format, "warning", { warning: `NOTIFY_SOCKET ${socket}: ${failed}; systemd is not told the relay's state` });
  }
}
let notifyFailed = false;

/**
 * SIGHUP for a running relay: `reload` reads the files again and applies them, returning the fields
 * of the `reloaded` event; a UsageError from it (a bad file, a change that needs a restart) keeps
 * what runs and is logged as `reload-failed` with `keeping`. systemd hears RELOADING=1, then READY=1.
 * @example onReload("json", "keeping the receivers that run", () => ({ receivers: 3 }))
 */
export function onReload(format: "text" | "json", keeping: string, reload: () => Record<string, unknown>): void {
  onSignal("SIGHUP", () => {
    notifyService(format, "RELOADING=1");
    try {
      logEvent(format, "reloaded", reload());
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      logEvent(format, "reload-failed", { error: e.message, action: keeping });
    } finally {
      notifyService(format, "READY=1");
    }
  });
}

/** The process as /metrics shows it. */
export function processFacts(): ProcessFacts {
  const r = runtimeVersion();
  const cpu = processCpuSeconds();
  return { ...processUsage(), cpuSeconds: cpu.user + cpu.system, version: ANYSRC_VERSION, runtime: r.name, runtimeVersion: r.version };
}

/** What a worker's stats lines add for its supervisor: its index and its process's memory and CPU. */
function workerFields(stats: StatsSettings): Record<string, unknown> {
  return stats.worker === undefined ? {} : { worker: stats.worker, process: processFacts() };
}

/**
 * The Prometheus endpoint on `address` (loopback, checked at start): `/metrics` answers with what
 * `exposition` gives at that moment, any other path 404.
 * @example const endpoint = serveMetrics(address, () => prometheusText(mode, counters, transports));
 */
export function serveMetrics(address: SocketAddress, exposition: () => string | Promise<string>): HttpEndpoint {
  return serveHttp(
    address.family === 4 ? address.ip.join(".") : "::1",
    address.port,
    async (request) =>
      new URL(request.url).pathname === "/metrics"
        ? new Response(await exposition(), { headers: { "content-type": "text/plain; version=0.0.4" } })
        : new Response("not found\n", { status: 404 }),
  );
}

/** Check the metrics address is on loopback: the endpoint has no authentication. */
export function checkMetricsAddress(command: string, a: SocketAddress): void {
  const loopback = a.family === 4 ? a.ip[0] === 127 : a.ip.every((b, i) => (i < 15 ? b === 0 : b === 1)) || (isV4Mapped(a.ip) && a.ip[12] === 127);
  if (!loopback) throw new UsageError(command, `--metrics must be a loopback address (127.0.0.0/8 or [::1]), got ${formatSocketAddress(a)}`);
}

/**
 * Print one event line, stamped with the time (RFC 3339): JSON with `--stats json` (a `time` field),
 * logfmt otherwise (`time=… event=NAME key=value…`).
 */
export function logEvent(format: "text" | "json", event: string, fields: Record<string, unknown>): void {
  const time = new Date().toISOString();
  if (format === "json") console.log(JSON.stringify({ event, time, ...fields }));
  else console.log(`time=${time} event=${event} ${Object.entries(fields).map(([k, v]) => `${k}=${logfmtValue(v)}`).join(" ")}`.trimEnd());
}

/** Lets a part of a running relay ask for the orderly stop SIGTERM gives, with its own exit status. */
export interface Shutdown {
  request(reason: string, status: number): void;
}

/** A shutdown handle; requests made before the relay runs wait for it. */
export function createShutdown(): Shutdown & { attach(stop: (reason: string, status: number) => void): void } {
  let pending: [string, number] | undefined;
  let stop: ((reason: string, status: number) => void) | undefined;
  return {
    request(reason, status) {
      if (stop) stop(reason, status);
      else pending ??= [reason, status];
    },
    attach(f) {
      stop = f;
      if (pending) f(...pending);
    },
  };
}

/**
 * What the relay does when the primary transport's TUN device is deleted underneath it: with a
 * fallback it says so and carries on through the fallback; without one it stops like SIGTERM
 * (final counters printed) with exit status 1, so a supervisor can restart it — which recreates the
 * device.
 */
function onTransportGone(format: "text" | "json", hasFallback: boolean, shutdown: Shutdown): (e: Error) => void {
  return (e) => {
    logEvent(format, "error", { error: e.message, action: hasFallback ? "continuing with the fallback transport" : "stopping" });
    if (!hasFallback) shutdown.request("device-gone", 1);
  };
}

/**
 * Run until SIGINT/SIGTERM (exit 0) or a shutdown request (its status); `announce` (the `listening`
 * event) runs once the signal handlers are in place. `stopReading` closes the
 * listeners; `closeAll` releases sessions; `refresh` brings counters read from the kernel up to date
 * before they are printed or served (`final`: every socket, once, before the final counters). Resolves with the exit status after the final counters
 * are printed.
 */
export function runUntilSignal(
  mode: string,
  counters: RelayCounters,
  transports: readonly Transport[],
  stats: StatsSettings,
  stopReading: () => void,
  closeAll: () => void,
  shutdown?: ReturnType<typeof createShutdown>,
  refresh: (final: boolean) => void = () => {},
  announce: () => void = () => {},
): Promise<number> {
  const print = () => {
    refresh(false);
    if (stats.format === "json") {
      console.log(JSON.stringify({ event: "stats", time: new Date().toISOString(), ...workerFields(stats), ...statsSnapshot(mode, counters, transports) }));
    } else console.log(statsLine(mode, counters, transports));
  };
  const timer = stats.intervalMs > 0 ? setInterval(print, stats.intervalMs) : undefined;
  const server = stats.metrics
    ? serveMetrics(stats.metrics, () => {
      refresh(false);
      return prometheusText(mode, counters, transports, processFacts());
    })
    : undefined;
  return new Promise((resolve) => {
    let stopping = false;
    const stop = async (signal: string, status = 0) => {
      if (stopping) return;
      stopping = true;
      notifyService(stats.format, `STOPPING=1\nSTATUS=stopping (${signal})`);
      stopReading();
      // Let replies already in flight arrive before sessions close: a short grace period.
      await new Promise((r) => setTimeout(r, 200));
      await Promise.all(transports.map((t) => t.close()));
      if (timer) clearInterval(timer);
      server?.close();
      refresh(true);
      const { wakeups, busyPolls, dispatches } = getPoller().stats;
      if (stats.format === "json") {
        console.log(
          JSON.stringify({
            event: "final",
            time: new Date().toISOString(),
            signal,
            ...workerFields(stats),
            ...statsSnapshot(mode, counters, transports),
            poller: { wakeups, busyPolls, dispatches },
          }),
        );
      } else console.log(statsLine(mode, counters, transports, `event=final signal=${signal}`));
      closeAll();
      resolve(status);
    };
    onSignal("SIGINT", () => void stop("SIGINT"));
    onSignal("SIGTERM", () => void stop("SIGTERM"));
    // SIGUSR1: the stats now, whatever the interval.
    onSignal("SIGUSR1", print);
    shutdown?.attach((reason, status) => void stop(reason, status));
    // Only now that every signal has its handler: a supervisor may signal as soon as it reads this.
    announce();
    notifyService(stats.format, `READY=1\nMAINPID=${processId()}\nSTATUS=${mode}: listening`);
  });
}
