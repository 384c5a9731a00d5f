/**
 * `anysrc tproxy`: the transparent UDP relay, transport chosen at run time.
 * @module
 */
import { parseArgs } from "node:util";
import { processId } from "../host.ts";
import { formatSocketAddress, parseIp, type SocketAddress, socketAddress } from "@anysrc/core";
import { createRelayCounters } from "../relay_stats.ts";
import { DEFAULT_LISTENER_BUFFER, DEFAULT_UPSTREAM_BUFFER, startTproxyRelay, type TproxyRelay } from "../tproxy/tproxy_relay.ts";
import { parseDuration } from "./durations.ts";
import { logEvent, onReload, openRelayOutput, runUntilSignal } from "./relay_runner.ts";
import { ipFieldFlags, SHARED_OPTIONS, socketBufferFlag, statsFlags, transportFlags, withConfig, workerStats } from "./relay_flags.ts";
import { createIpFieldPolicy, type IpFieldSettings } from "../ip_field_policy.ts";
import type { FlagValues } from "./config_file.ts";
import { addressFlag, intFlag, UsageError } from "./usage_error.ts";
import { rulesOptions } from "./rules_command.ts";
import { rulesDown, rulesUp } from "../rules/apply_rules.ts";
import { type WorkerCount, type WorkerRole, workerRole, workersFlag } from "../workers/worker_role.ts";
import { runRelayService } from "../workers/relay_service.ts";
import { tproxyListenerOptions } from "../tproxy/tproxy_relay.ts";

export const TPROXY_USAGE = `Usage: anysrc tproxy --port P [--listen ADDR]… --transport raw|bindsrc|tun|packet [--fallback raw|bindsrc]
                     [--idle-timeout 120s] [--max-sessions N] [--mark N] [--nat full|restricted]
                     [--stats-interval 10s] [--stats text|json] [--log-format text|json] [--metrics 127.0.0.1:9100] [--config FILE]
                     [--tun NAME] [--mtu N] [--socket-buffer BYTES] [--offload on|off]
                     [--dscp keep|clear|N] [--ecn keep|clear] [--ttl keep|N] [--rules IFACE] [--workers N|auto]

  --port P             TPROXY port the nft rule diverts to
  --listen ADDR        address to listen on: IP (with --port) or IP:PORT; repeatable
                       (default 0.0.0.0 and ::)
  --transport T        how replies leave with the remote's address as source: raw | bindsrc | tun | packet
  --fallback T         second transport for replies the first refuses (bindsrc EADDRINUSE): raw | bindsrc
  --idle-timeout D     close a session idle this long (default 120s; QUIC wants ≥ 30s)
  --max-sessions N     session cap; past it the least recently used is evicted (default 65536)
  --mark N             SO_MARK on upstream (and transport) sockets, to keep them out of the TPROXY rule
  --nat full|restricted  full: replies from any remote reach the client (full cone, default);
                       restricted: only from remotes the client has sent to
  --stats-interval D   one summary line per interval (default 10s; 0 disables)
  --stats text|json    format of every line, events and stats (default text: logfmt with an RFC 3339
                       time; json: one object per line with a time field); --log-format is the same
  --metrics ADDR       Prometheus text endpoint on a loopback address, path /metrics
  --config FILE        JSON settings, keys = flag names ({"port": 15000, "transport": "raw"})
  --tun NAME, --mtu N  TUN device and MTU for --transport tun (default anysrc0, 1500)
  --socket-buffer B    receive buffer of the listeners and of every upstream socket, bytes (8M, 512K
                       accepted; default 16M listeners, 4M upstream; SO_RCVBUFFORCE when privileged).
                       Datagrams the kernel still drops are counted: kernelDropped{listener,upstream}
  --offload on|off     UDP GRO on the relay's sockets, GSO sends (bindsrc, upstream) and TUN virtio-net
                       offloads, where the kernel accepts them (default on; refusals fall back to plain
                       sends, counted in offloadFallbacks). Pays on bulk flows (downloads, QUIC, media)
  --dscp keep|clear|N  DSCP of relayed datagrams, both directions: as received (default), 0, or N (0-63)
  --ecn keep|clear     ECN bits: as received (default; QUIC's ECN validation needs them) or cleared
  --ttl keep|N         TTL / hop limit: the received one minus 1, like a router (datagrams arriving
                       with TTL 1 are dropped, counted as ttl-expired), or N; default: the system's
  --rules IFACE        install the diversion of UDP arriving on IFACE at start and remove it at exit
                       (anysrc rules up / down with this --port, mark 1, table 100, IPv4 and IPv6)
  --workers N|auto     N relay processes behind one port (SO_REUSEPORT), a client's datagrams always
                       reaching the same one; auto: one per CPU this process may use, each pinned
                       to its CPU (default 1). A worker that dies is restarted; stats and /metrics
                       show the sum (worker="all") and each worker. tun needs a multi-queue device

SIGHUP: read --config again and apply --idle-timeout, --max-sessions, --dscp, --ecn, --ttl (sessions
kept); a bad file keeps the running settings (reload-failed); other changes need a restart (named).
SIGUSR1: print the stats now. SIGINT/SIGTERM: stop reading, flush, print the final counters, exit 0.`;

const OPTIONS = {
  ...SHARED_OPTIONS,
  port: { type: "string" },
  listen: { type: "string", multiple: true },
  "idle-timeout": { type: "string" },
  "max-sessions": { type: "string" },
  nat: { type: "string" },
  rules: { type: "string" },
} as const;

/** The settings a SIGHUP reload applies to a running relay (the rest need a restart). */
const RELOADABLE = ["idle-timeout", "max-sessions", "dscp", "ecn", "ttl"] as const;

/** `--idle-timeout`, `--max-sessions`, `--dscp`, `--ecn`, `--ttl`: what a reload may change. */
function reloadableSettings(cmd: string, v: FlagValues): { idleTimeoutMs: number; maxSessions: number; ipFields: IpFieldSettings } {
  const idleText = (v["idle-timeout"] as string | undefined) ?? "120s";
  const idleTimeoutMs = parseDuration(idleText);
  if (idleTimeoutMs === undefined || idleTimeoutMs <= 0) throw new UsageError(cmd, `--idle-timeout must be a duration like 120s, got "${idleText}"`);
  const maxSessions = intFlag(cmd, "--max-sessions", v["max-sessions"] as string | undefined, 1, 10_000_000) ?? 65536;
  return { idleTimeoutMs, maxSessions, ipFields: ipFieldFlags(cmd, v) };
}

/**
 * SIGHUP: read `--config` again and apply what may change while running; sessions are kept. A bad
 * file (or a change the sockets cannot follow) keeps the running settings and says why; changed
 * settings that need a restart are named in the `reloaded` event.
 */
function reloadOnHangup(cmd: string, cliValues: FlagValues, running: FlagValues, relay: TproxyRelay, format: "text" | "json"): void {
  let current = running;
  onReload(format, "keeping the running settings", () => {
    const next = withConfig(cmd, cliValues, OPTIONS);
    const r = reloadableSettings(cmd, next);
    const refused = relay.reconfigure({ idleTimeoutMs: r.idleTimeoutMs, maxSessions: r.maxSessions, ipFields: createIpFieldPolicy(r.ipFields) });
    if (refused) throw new UsageError(cmd, refused);
    const needsRestart = Object.keys({ ...current, ...next }).filter((k) =>
      !(RELOADABLE as readonly string[]).includes(k) && JSON.stringify(next[k]) !== JSON.stringify(current[k])
    );
    current = next;
    return { idleTimeoutMs: r.idleTimeoutMs, maxSessions: r.maxSessions, ipFields: r.ipFields, needsRestart };
  });
}

/** What `anysrc tproxy` was asked to do: flags and config file, checked. */
interface TproxyPlan extends ReturnType<typeof reloadableSettings> {
  /** The command line's flags alone (a reload reads the config file again under them). */
  readonly cliValues: FlagValues;
  /** Flags and config file together. */
  readonly values: FlagValues;
  readonly port: number;
  readonly listen: SocketAddress[];
  readonly transport: ReturnType<typeof transportFlags>;
  readonly stats: ReturnType<typeof statsFlags>;
  readonly socketBuffer: number | undefined;
  readonly nat: "full" | "restricted";
  readonly workers: WorkerCount;
}

/** Run `anysrc tproxy` until a signal; returns the exit status. */
export async function tproxyCommand(args: string[]): Promise<number> {
  const cmd = "tproxy";
  const plan = parseTproxyArgs(args);
  // A worker of a supervisor: its sockets are handed over, its rules and endpoint are the supervisor's.
  const role = workerRole();
  if (role) return relayUntilSignal({ ...plan, stats: workerStats(role.index) }, role);
  const { values: v, transport, stats } = plan;
  const rules = typeof v.rules === "string" ? rulesOptions(cmd, { port: String(plan.port), iface: v.rules }) : undefined;
  if (rules && transport.mark === rules.mark) {
    throw new UsageError(cmd, `--mark ${transport.mark} is the diversion's mark: upstream packets would be delivered back to the relay (use --mark 2)`);
  }
  const run = () => (plan.workers.count > 1 ? superviseTproxy(plan, args) : relayUntilSignal(plan));
  if (!rules) return run();
  await rulesUp(rules);
  logEvent(stats.format, "rules-up", { iface: rules.iface, port: rules.port, mark: rules.mark, table: rules.table });
  try {
    return await run();
  } finally {
    logEvent(stats.format, "rules-down", await rulesDown(rules));
  }
}

function parseTproxyArgs(args: string[]): TproxyPlan {
  const cmd = "tproxy";
  const parsed = parseArgs({ args, strict: true, options: OPTIONS });
  const v = withConfig(cmd, parsed.values, OPTIONS);
  const port = intFlag(cmd, "--port", v.port as string | undefined, 1, 65535);
  if (port === undefined) throw new UsageError(cmd, "--port is required");
  const listenTexts = (v.listen as string[] | undefined) ?? ["0.0.0.0", "::"];
  const listen: SocketAddress[] = listenTexts.map((text) => {
    if (/^[0-9.]+$/.test(text) || (text.includes(":") && !text.startsWith("[") && !/^[0-9.]+:\d+$/.test(text))) {
      try {
        return socketAddress(parseIp(text), port);
      } catch {
        throw new UsageError(cmd, `--listen: Cannot parse address "${text}"`);
      }
    }
    return addressFlag(cmd, "--listen", text);
  });
  const transport = transportFlags(cmd, v);
  const stats = statsFlags(cmd, v);
  const reloadable = reloadableSettings(cmd, v);
  const socketBuffer = socketBufferFlag(cmd, v);
  const nat = (v.nat as string | undefined) ?? "full";
  if (nat !== "full" && nat !== "restricted") throw new UsageError(cmd, `--nat must be full or restricted, got "${nat}"`);
  const workers = workersFlag(cmd, v);
  return { ...reloadable, cliValues: parsed.values, values: v, port, listen, transport, stats, socketBuffer, nat, workers };
}

/** `--workers N`: the listeners (and a multi-queue TUN device) opened here once, the relay run by N workers. */
function superviseTproxy(p: TproxyPlan, args: string[]): Promise<number> {
  const fields = createIpFieldPolicy(p.ipFields);
  const buffer = p.socketBuffer ?? DEFAULT_LISTENER_BUFFER;
  return runRelayService({
    mode: "tproxy",
    args,
    workers: p.workers,
    stats: p.stats,
    transport: p.transport,
    transparentListeners: true,
    listen: p.listen,
    listenerOptions: (a) => tproxyListenerOptions(a.family, buffer, fields),
  });
}

/** The relay itself, from its transports to the final counters; `role` when a supervisor started it. */
async function relayUntilSignal(p: TproxyPlan, role?: WorkerRole): Promise<number> {
  const { transport, stats, socketBuffer } = p;
  const counters = createRelayCounters();
  let relay: TproxyRelay | undefined;
  const { outbound, shutdown } = openRelayOutput(transport, stats, counters, {
    transparentListeners: true,
    multiQueue: role !== undefined && role.count > 1,
    // Datagrams the kernel hands to a bound source socket are client traffic to that address.
    onReceive: (d) => relay?.fromClient(d.src, d.dst, d.payload),
  });
  try {
    relay = startTproxyRelay({
      listen: p.listen,
      idleTimeoutMs: p.idleTimeoutMs,
      maxSessions: p.maxSessions,
      nat: p.nat,
      outbound,
      counters,
      ...(transport.mark !== undefined ? { mark: transport.mark } : {}),
      listenerBuffer: socketBuffer ?? DEFAULT_LISTENER_BUFFER,
      upstreamBuffer: socketBuffer ?? DEFAULT_UPSTREAM_BUFFER,
      offload: transport.offload,
      onOffloadFallback: (reason) => logEvent(stats.format, "offload-fallback", { reason }),
      ipFields: createIpFieldPolicy(p.ipFields),
      ...(role ? { inheritedListeners: role.listenerFds } : {}),
    });
  } catch (e) {
    await Promise.all(outbound.transports.map((t) => t.close()));
    throw e;
  }
  const r = relay;
  reloadOnHangup("tproxy", p.cliValues, p.values, r, stats.format);
  return runUntilSignal(
    "tproxy",
    counters,
    outbound.transports,
    stats,
    () => r.stopListening(),
    () => r.close(),
    shutdown,
    (all) => r.refreshKernelDrops(all),
    () => announce(p, r),
  );
}

/** The `listening` event: what runs, with which settings. */
function announce(p: TproxyPlan, r: TproxyRelay): void {
  const { transport, stats, socketBuffer } = p;
  logEvent(stats.format, "listening", {
    pid: processId(),
    mode: "tproxy",
    listen: p.listen.map(formatSocketAddress),
    transport: transport.kind,
    fallback: transport.fallback ?? null,
    nat: p.nat,
    idleTimeoutMs: p.idleTimeoutMs,
    maxSessions: p.maxSessions,
    offload: transport.offload,
    ipFields: p.ipFields,
    socketBuffer: {
      listener: socketBuffer ?? DEFAULT_LISTENER_BUFFER,
      upstream: socketBuffer ?? DEFAULT_UPSTREAM_BUFFER,
      listenerGranted: r.listenerBufferGranted,
    },
    ...(stats.metrics ? { metrics: formatSocketAddress(stats.metrics) } : {}),
  });
}
