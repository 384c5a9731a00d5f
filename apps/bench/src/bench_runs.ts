/**
 * The measurements of `anysrc bench`, each one run in the shared namespace testbed.
 * @module
 */
import {
  ADDRESSES as A,
  countSyscalls,
  cpuSeconds,
  cpuTimes,
  machineBusySeconds,
  memoryMiB,
  openFds,
  REPO_ROOT,
  type Testbed,
  TRACED_SYSCALLS,
  treeCpuTimes,
  treeResidentMiB,
  withFdLimit,
} from "@anysrc/testbed";
import type { TransportKind } from "@anysrc/relay/extension";
import { readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

/** Who does the work in a run: a runtime running anysrc, or a baseline. */
export type Contender = "c" | "c-basic" | "bun" | "deno" | "node" | "v2ray";

export const ANYSRC = `${REPO_ROOT}apps/relay/bin/anysrc`;
export const TPROXY_PORT = 15000;
/** Upstream mark: anything but the TPROXY mark (1), or policy routing would send upstream traffic to lo. */
export const UPSTREAM_MARK = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const bracket = (family: 4 | 6, ip: string) => (family === 4 ? ip : `[${ip}]`);

/** Where a run happens: the testbed, the C programs by name, the TUN device the tun transport writes to. */
export interface Rig {
  readonly bed: Testbed;
  readonly bin: Record<string, string>;
  readonly tun: string;
  /** CPUs for the harness and for the device under test, where the section pins them (bench_ndr.ts cpuSplit). */
  readonly split?: { readonly harness: string; readonly relay: string } | undefined;
}

/** A send-only run: `count` datagrams of `size` to the client's `port`, from `sources` source ports. */
export interface SendRun {
  readonly family: 4 | 6;
  readonly size: number;
  readonly count: number;
  readonly port: number;
  readonly sources?: number;
  readonly offload?: "on" | "off";
}

/** One send-only run: packets/s handed to the kernel, and how many the source-checking sink counted. */
export interface SendResult {
  readonly pps: number;
  readonly delivered: number;
  readonly count: number;
}

/**
 * `DEV/MAC` of the router's next hop to `dst` (`ip route get`, then the neighbour table; a datagram
 * sent first makes the kernel resolve it), for the C AF_PACKET sender.
 */
export function nextHopOf(bed: Testbed, dst: string): string {
  const route = JSON.parse(bed.run(bed.router, ["ip", "-j", "route", "get", dst, "mark", String(UPSTREAM_MARK)]))[0] as { dev: string; gateway?: string };
  const via = route.gateway ?? dst;
  for (let attempt = 0; attempt < 20; attempt++) {
    const neighbours = JSON.parse(bed.run(bed.router, ["ip", "-j", "neigh", "show", via, "dev", route.dev]) || "[]") as { lladdr?: string }[];
    const mac = neighbours.find((n) => n.lladdr)?.lladdr;
    if (mac) return `${route.dev}/${mac}`;
    bed.run(bed.router, ["bash", "-c", `echo x > /dev/udp/${via}/9 || true`]);
    execFileSync("sleep", ["0.05"]);
  }
  throw new Error(`no neighbour entry for ${via} on ${route.dev} in the router`);
}

/**
 * Send `count` datagrams of `size` from the spoofed server address in the router to the client
 * (`anysrc send --batch 32`, or the C sender of the same variant), from `sources` source ports
 * round-robin. With one source a connected C sink counts only datagrams from exactly that source;
 * with several, an unconnected one counts them all (the same receiving work either way).
 */
export async function sendOnce(rig: Rig, who: Contender, kind: TransportKind, run: SendRun): Promise<SendResult> {
  const { bed, bin, tun } = rig;
  const { family, size, count, port, sources = 1, offload = "on" } = run;
  const src = family === 4 ? A.server4 : A.server6;
  const dst = family === 4 ? A.client4 : A.client6;
  const srcPort = sources === 1 ? 7000 : 20000;
  const sink = bed.spawn(bed.client, [bin.udp_sink!, dst, String(port), "60", ...(sources === 1 ? [src, String(srcPort)] : [])]);
  await sink.waitFor((l) => l.ready === true);
  // The C packet sender is told the device and next hop the kernel's tables name (anysrc asks rtnetlink itself).
  const device = who === "c" && kind === "packet" ? nextHopOf(bed, dst) : tun;
  const argv = who === "c" ? [bin.send_baseline!, kind, src, String(srcPort), dst, String(port), String(count), String(size), "32", device, String(sources)] : [
    ANYSRC,
    "--runtime",
    who,
    "send",
    "--transport",
    kind,
    "--src",
    `${bracket(family, src)}:${srcPort}`,
    "--dst",
    `${bracket(family, dst)}:${port}`,
    "--count",
    String(count),
    "--size",
    String(size),
    "--batch",
    "32",
    "--sources",
    String(sources),
    "--tun",
    tun,
    "--offload",
    offload,
  ];
  const sender = bed.spawn(bed.router, argv);
  const line = await sender.waitFor((l) => typeof l.pps === "number", 120_000);
  await sender.exited();
  const got = await sink.waitFor((l) => typeof l.received === "number", 70_000);
  return { pps: line.pps as number, delivered: got.received as number, count };
}

/** One end-to-end run of a relay under load. */
export interface RelayResult {
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  readonly corrupt: number;
  readonly p50Us: number;
  readonly p99Us: number;
  /** Relay CPU (all threads) per relayed datagram, each direction counted once. */
  readonly cpuUsPerDatagram: number;
  /** Datagrams relayed per second (both directions). */
  readonly datagramsPerSecond: number;
  readonly peakRssMiB: number;
  readonly fds: number;
}

/** The argv that starts a relay contender in the router namespace. */
export function relayArgv(
  bin: Record<string, string>,
  who: Contender,
  kind: TransportKind,
  tun: string,
  v2rayConfig: string | undefined,
  offload: "on" | "off" = "on",
  workers?: string,
): string[] {
  if (who === "c") return [bin.tproxy_relay!, String(TPROXY_PORT), String(UPSTREAM_MARK)];
  if (who === "c-basic") return [bin.tproxy_relay_basic!, String(TPROXY_PORT), String(UPSTREAM_MARK)];
  if (who === "v2ray") return ["v2ray", "-config", v2rayConfig ?? ""];
  return [
    ANYSRC,
    "--runtime",
    who,
    "tproxy",
    "--port",
    String(TPROXY_PORT),
    "--transport",
    kind,
    "--mark",
    String(UPSTREAM_MARK),
    "--stats",
    "json",
    "--stats-interval",
    "0",
    "--tun",
    tun,
    "--offload",
    offload,
    ...(workers ? ["--workers", workers] : []),
  ];
}

/** Wait until a relay listens (anysrc and the C relay print an event, v2ray logs "started"). */
async function relayReady(p: ReturnType<Testbed["spawn"]>, who: Contender): Promise<void> {
  if (who === "v2ray") await p.waitFor((l) => typeof l.text === "string" && l.text.includes("started"), 30_000);
  else await p.waitFor((l) => l.event === "listening", 30_000);
  await sleep(300);
}

/**
 * A v2ray configuration of the same job: dokodemo-door inbounds (IPv4 and IPv6) in TPROXY mode on
 * the relay port, freedom outbound with the upstream mark. Written to `path`; returns it.
 */
export function writeV2rayConfig(path: string): string {
  const inbound = (listen: string) => ({
    listen,
    port: TPROXY_PORT,
    protocol: "dokodemo-door",
    settings: { network: "udp", followRedirect: true },
    streamSettings: { sockopt: { tproxy: "tproxy" } },
  });
  const config = {
    log: { loglevel: "warning" },
    inbounds: [inbound("0.0.0.0"), inbound("::")],
    outbounds: [{ protocol: "freedom", settings: {}, streamSettings: { sockopt: { mark: UPSTREAM_MARK } } }],
  };
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

/**
 * Start the relay, offer `rate` datagrams/s over 64 flows for `seconds` from the client namespace
 * (C load generator: connected sockets, every echo verified and timed), read what it cost.
 */
export async function relayOnce(
  rig: Rig,
  who: Contender,
  kind: TransportKind,
  run: {
    readonly family: 4 | 6;
    readonly rate: number;
    readonly seconds: number;
    /** Seconds of the same paced load first (its own sockets), as in SaturateRun. */
    readonly warmupSeconds?: number;
    readonly v2rayConfig?: string | undefined;
  },
): Promise<RelayResult> {
  const { bed, bin, tun } = rig;
  const { family, rate, seconds, v2rayConfig, warmupSeconds = 0 } = run;
  const relay = bed.spawn(bed.router, relayArgv(bin, who, kind, tun, v2rayConfig));
  try {
    await relayReady(relay, who);
    const server = family === 4 ? A.server4 : A.server6;
    const paced = (s: number) => bed.spawn(bed.client, [bin.relay_load!, server, "7000", "64", String(rate), String(s), "256"]);
    const warm = warmupSeconds > 0 ? await paced(warmupSeconds).waitFor((l) => typeof l.sent === "number", (warmupSeconds + 30) * 1000) : undefined;
    const cpu0 = cpuSeconds(relay.pid);
    const load = paced(seconds);
    const r = await load.waitFor((l) => typeof l.sent === "number", (seconds + 30) * 1000);
    const cpu = cpuSeconds(relay.pid) - cpu0;
    const mem = memoryMiB(relay.pid);
    const fds = openFds(relay.pid);
    const received = r.received as number;
    return {
      sent: r.sent as number,
      received,
      // What the warm-up lost or got back corrupt counts too.
      lost: (r.lost as number) + ((warm?.lost as number | undefined) ?? 0),
      corrupt: (r.corrupt as number) + ((warm?.corrupt as number | undefined) ?? 0),
      p50Us: r.p50_us as number,
      p99Us: r.p99_us as number,
      cpuUsPerDatagram: received > 0 ? (cpu * 1e6) / (2 * received) : Number.NaN,
      datagramsPerSecond: (2 * received) / (r.seconds as number),
      peakRssMiB: mem.peak,
      fds,
    };
  } finally {
    await relay.stop();
  }
}

/** How a saturating run goes: `window` in flight for `seconds`; perf counts syscalls for `syscallSeconds` of it (0: not). */
export interface SaturateRun {
  readonly window: number;
  readonly seconds: number;
  readonly syscallSeconds?: number;
  readonly serverPort?: number;
  readonly offload?: "on" | "off";
  /** anysrc's `--workers` (absent: one process, as before). */
  readonly workers?: string;
  /**
   * Seconds of the same closed loop before the measured run (its own client sockets, so its own
   * sessions): the JIT compiles the relay's path then, as it would early in a long-running service's
   * life, and the measured run sees the steady state. The C relay gets the same warm-up.
   */
  readonly warmupSeconds?: number;
}

/** One cell of the saturating benchmark. */
export interface SaturateCell {
  readonly family: 4 | 6;
  readonly flows: number;
  readonly size: number;
}

/** One saturating run: a closed loop keeping `window` datagrams in flight, unpaced. */
export interface SaturateResult {
  readonly sent: number;
  readonly received: number;
  /** Not echoed at all (written off after 200 ms and never seen), plus corrupt. */
  readonly lost: number;
  /** Datagrams relayed per second, both directions. */
  readonly datagramsPerSecond: number;
  /** Relay CPU per relayed datagram (each direction one), in user and in kernel mode. */
  readonly userUsPerDatagram: number;
  readonly systemUsPerDatagram: number;
  readonly p50Us: number;
  readonly p99Us: number;
  /** Kernel drop counters of the testbed's namespaces that moved during the run (`router:UdpRcvbufErrors`, …). */
  readonly kernelDrops: Record<string, number>;
  /** The relay's own count of datagrams the kernel dropped on its sockets, when it reports one. */
  readonly relayKernelDropped?: number;
  /** Syscalls per relayed datagram, total and by name (perf tracepoints), when counted. */
  readonly syscalls?: { readonly total: number; readonly byName: Record<string, number> };
  /** anysrc: the share of datagrams it read in coalesced (GRO) reads, and relayed inside GSO sends (upstream and by the transport). */
  readonly coalescedIn?: number;
  readonly coalescedOut?: number;
  /**
   * CPU per relayed datagram of everything else on the machine during the run (the machine's busy
   * time less the relay's): load generator, echo server, the kernel forwarding between namespaces.
   */
  readonly testbedUsPerDatagram?: number;
  /** Resident memory of the relay at the end of the run (a supervisor and its workers together), MiB. */
  readonly rssMiB?: number;
  /** Of `rssMiB`: the process the bench started (with --workers, the supervisor), MiB. */
  readonly mainRssMiB?: number;
}

/** Kernel counters whose movement means a datagram died in the router's stack. */
const DROP_COUNTERS = [
  "UdpRcvbufErrors",
  "UdpSndbufErrors",
  "UdpInErrors",
  "Udp6RcvbufErrors",
  "Udp6SndbufErrors",
  "Udp6InErrors",
  "IpReasmFails",
  "Ip6ReasmFails",
  "IpReasmTimeout",
  "Ip6ReasmTimeout",
  "IpOutDiscards",
  "Ip6OutDiscards",
  "IpInDiscards",
  "Ip6InDiscards",
] as const;

/**
 * The drop counters of the client, router and server namespaces (absolute, `nstat -asz`), named
 * `router:UdpRcvbufErrors` and so on: a datagram can die in any of the three stacks (the client
 * reassembles what raw and tun fragment).
 */
export function kernelDropCounters(bed: Testbed): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [where, ns] of [["client", bed.client], ["router", bed.router], ["server", bed.server]] as const) {
    for (const line of bed.run(ns, ["nstat", "-asz"]).split("\n")) {
      const [name, value] = line.trim().split(/\s+/);
      if (name && (DROP_COUNTERS as readonly string[]).includes(name)) out[`${where}:${name}`] = Number(value);
    }
    // Links: a veth drops what its peer's backlog cannot take (tx_dropped), or what arrives unwanted.
    const links = JSON.parse(bed.run(ns, ["ip", "-s", "-j", "link", "show"])) as {
      ifname: string;
      stats64?: { rx: { dropped: number }; tx: { dropped: number } };
    }[];
    for (const l of links) {
      if (!l.stats64 || l.ifname === "lo") continue;
      out[`${where}:${l.ifname}:rx_dropped`] = l.stats64.rx.dropped;
      out[`${where}:${l.ifname}:tx_dropped`] = l.stats64.tx.dropped;
    }
  }
  // Per-CPU backlog overflows (netdev_max_backlog), machine-wide: column 2 of softnet_stat.
  out["softnet:dropped"] = readFileSync("/proc/net/softnet_stat", "utf8").trim().split("\n").reduce(
    (a, line) => a + Number.parseInt(line.split(/\s+/)[1] ?? "0", 16),
    0,
  );
  return out;
}

export function counterDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/**
 * Start the relay, keep `window` datagrams in flight over `cell.flows` flows for `seconds` (closed
 * loop, C generator in the client namespace, every echo verified), read what it cost. With
 * `syscallSeconds`, perf counts the relay's syscalls during that long a stretch of the run.
 */
export async function saturateOnce(rig: Rig, who: Contender, kind: TransportKind, cell: SaturateCell, run: SaturateRun): Promise<SaturateResult> {
  const { bed, bin, tun } = rig;
  const { window, seconds, syscallSeconds = 0 } = run;
  const o = run;
  const relay = bed.spawn(bed.router, relayArgv(bin, who, kind, tun, undefined, o.offload, o.workers));
  try {
    await relayReady(relay, who);
    const server = cell.family === 4 ? A.server4 : A.server6;
    const closedLoop = (s: number) =>
      bed.spawn(bed.client, [bin.relay_saturate!, server, String(o.serverPort ?? 7000), String(cell.flows), String(window), String(s), String(cell.size)]);
    const drops0 = kernelDropCounters(bed);
    // What the warm-up loses counts with the run's losses: nothing may go missing at any time.
    const warm = o.warmupSeconds ? await closedLoop(o.warmupSeconds).waitFor((l) => typeof l.sent === "number", (o.warmupSeconds + 30) * 1000) : undefined;
    const warmLost = warm ? (warm.lost as number) + (warm.corrupt as number) : 0;
    // The relay's whole process tree: with --workers, the supervisor and its workers.
    const cpu0 = treeCpuTimes(relay.pid);
    const busy0 = machineBusySeconds();
    const load = closedLoop(seconds);
    // Let the loop fill before counting syscalls, so the count sees the steady state.
    const counted = syscallSeconds > 0 ? sleep(300).then(() => countSyscalls(relay.pid, syscallSeconds)) : undefined;
    const r = await load.waitFor((l) => typeof l.sent === "number", (seconds + 30) * 1000);
    const cpu1 = treeCpuTimes(relay.pid);
    const busy1 = machineBusySeconds();
    const rssMiB = treeResidentMiB(relay.pid);
    const mainRssMiB = memoryMiB(relay.pid).current;
    const drops = counterDelta(drops0, kernelDropCounters(bed));
    const received = r.received as number;
    const relayed = 2 * received;
    const calls = counted ? await counted : undefined;
    await relay.stop();
    const final = relay.lines.find((l) => l.event === "final");
    const kernelDropped = final?.kernelDropped as Record<string, number> | undefined;
    // Only anysrc's final line carries these counters (the C relay prints its own few).
    const ours = final !== undefined && typeof final.coalescedDatagrams === "number" && typeof final.transports === "object" && final.transports !== null;
    const both = ours ? (final.received as number) + (final.repliesReceived as number) : 0;
    const transportCoalesced = ours ? Object.values(final.transports as Record<string, { coalesced: number }>).reduce((a, t) => a + t.coalesced, 0) : 0;
    let syscalls: SaturateResult["syscalls"];
    if (calls && calls.total !== undefined) {
      // Per relayed datagram at the run's rate: the count covers syscallSeconds of it.
      const perSecond = relayed / seconds;
      const byName: Record<string, number> = {};
      for (const n of TRACED_SYSCALLS) if (calls[n]) byName[n] = calls[n]! / (perSecond * syscallSeconds);
      syscalls = { total: calls.total / (perSecond * syscallSeconds), byName };
    }
    return {
      sent: r.sent as number,
      received,
      lost: (r.lost as number) + (r.corrupt as number) + warmLost,
      datagramsPerSecond: relayed / seconds,
      userUsPerDatagram: relayed > 0 ? ((cpu1.user - cpu0.user) * 1e6) / relayed : Number.NaN,
      systemUsPerDatagram: relayed > 0 ? ((cpu1.system - cpu0.system) * 1e6) / relayed : Number.NaN,
      testbedUsPerDatagram: relayed > 0 ? ((busy1 - busy0 - (cpu1.user + cpu1.system - cpu0.user - cpu0.system)) * 1e6) / relayed : Number.NaN,
      rssMiB,
      mainRssMiB,
      p50Us: r.p50_us as number,
      p99Us: r.p99_us as number,
      kernelDrops: drops,
      ...(kernelDropped ? { relayKernelDropped: Object.values(kernelDropped).reduce((a, b) => a + b, 0) } : {}),
      ...(syscalls ? { syscalls } : {}),
      ...(ours && both > 0
        ? { coalescedIn: (final!.coalescedDatagrams as number) / both, coalescedOut: ((final!.coalescedForwarded as number) + transportCoalesced) / both }
        : {}),
    };
  } finally {
    await relay.stop();
  }
}

/**
 * The testbed's own ceiling for a saturating cell: the same closed loop (after the same warm-up) with
 * no relay, the router forwarding UDP in its kernel and no TPROXY rule. No process to charge CPU to.
 */
export async function ceilingOnce(rig: Rig, cell: SaturateCell, run: SaturateRun): Promise<SaturateResult> {
  const { bed, bin } = rig;
  const server = cell.family === 4 ? A.server4 : A.server6;
  const closedLoop = (s: number) =>
    bed.spawn(bed.client, [bin.relay_saturate!, server, String(run.serverPort ?? 7000), String(cell.flows), String(run.window), String(s), String(cell.size)])
      .waitFor((l) => typeof l.sent === "number", (s + 30) * 1000);
  bed.disableTproxy();
  bed.forwardUdp(true);
  try {
    const drops0 = kernelDropCounters(bed);
    const warm = run.warmupSeconds ? await closedLoop(run.warmupSeconds) : undefined;
    const r = await closedLoop(run.seconds);
    const received = r.received as number;
    return {
      sent: r.sent as number,
      received,
      lost: (r.lost as number) + (r.corrupt as number) + (warm ? (warm.lost as number) + (warm.corrupt as number) : 0),
      datagramsPerSecond: (2 * received) / run.seconds,
      userUsPerDatagram: Number.NaN,
      systemUsPerDatagram: Number.NaN,
      p50Us: r.p50_us as number,
      p99Us: r.p99_us as number,
      kernelDrops: counterDelta(drops0, kernelDropCounters(bed)),
    };
  } finally {
    bed.forwardUdp(false);
    bed.enableTproxy(TPROXY_PORT);
  }
}

/** Resident memory of a relay holding `sessions` sessions (one datagram from each of that many client sockets). */
export async function manySessionsOnce(
  rig: Rig,
  who: Contender,
  sessions: number,
): Promise<{ rssMiB: number; settledRssMiB: number; fds: number; received: number }> {
  const { bed, bin, tun } = rig;
  // Room for the sessions' sockets (up to the hard limit this host allows).
  const raise = (argv: string[]) => withFdLimit(sessions + 1024, argv);
  const relay = bed.spawn(bed.router, raise(relayArgv(bin, who, "raw", tun, undefined)));
  try {
    await relayReady(relay, who);
    const load = bed.spawn(bed.client, raise([bin.relay_load!, A.server4, "7000", String(sessions), String(sessions), "1", "64", "3"]));
    const r = await load.waitFor((l) => typeof l.sent === "number", 60_000);
    const mem = memoryMiB(relay.pid);
    const fds = openFds(relay.pid);
    await load.stop();
    // The same sessions 2 s later (they idle out after minutes): what the load's garbage left once
    // the runtime has collected it and returned the pages. The first reading includes that garbage.
    await sleep(2000);
    return { rssMiB: mem.current, settledRssMiB: memoryMiB(relay.pid).current, fds, received: r.received as number };
  } finally {
    await relay.stop();
  }
}

/** CPU share (% of one core) of a relay with no traffic. */
export async function idleOnce(rig: Rig, who: Contender, seconds: number): Promise<number> {
  const { bed, bin, tun } = rig;
  const relay = bed.spawn(bed.router, relayArgv(bin, who, "raw", tun, undefined));
  try {
    await relayReady(relay, who);
    await sleep(700);
    const cpu0 = cpuSeconds(relay.pid);
    await sleep(seconds * 1000);
    return ((cpuSeconds(relay.pid) - cpu0) / seconds) * 100;
  } finally {
    await relay.stop();
  }
}

/** One forward run: a sender's datagrams fanned out to `receivers` receivers. */
export interface ForwardResult {
  /** Datagrams the sender sent (the forwarder's input). */
  readonly sent: number;
  /** Copies the receivers counted, all together, and per second of the sender's run. */
  readonly delivered: number;
  readonly copiesPerSecond: number;
  /** Copies that never arrived (sent × receivers − delivered). */
  readonly lost: number;
  /** Forwarder CPU (all threads) per datagram sent to it, and the part of it in user mode. */
  readonly cpuUsPerDatagram: number;
  readonly userUsPerDatagram: number;
}

/** The argv that starts a forwarder contender in the router namespace. */
function forwardArgv(bin: Record<string, string>, who: Contender, kind: TransportKind, family: 4 | 6, receivers: readonly string[], tun: string): string[] {
  const listen = family === 4 ? A.routerServerSide4 : A.routerServerSide6;
  if (who === "c") return [bin.forward_baseline!, listen, "2055", ...receivers.flatMap((r, i) => [r, String(9500 + i)])];
  return [
    ANYSRC,
    "--runtime",
    who,
    "forward",
    "--listen",
    `${bracket(family, listen)}:2055`,
    ...receivers.flatMap((r, i) => ["--to", `${bracket(family, r)}:${9500 + i}`]),
    "--allow",
    family === 4 ? "198.19.2.0/24" : "2001:db8:2::/64",
    "--transport",
    kind,
    "--stats",
    "json",
    "--stats-interval",
    "0",
    "--tun",
    tun,
  ];
}

/** A forward run: `rate` datagrams/s of `size` bytes for `seconds`, to `receivers` receivers, after a warm-up at `warmRate`. */
export interface ForwardRun {
  readonly family: 4 | 6;
  readonly rate: number;
  readonly seconds: number;
  readonly size: number;
  readonly receivers: number;
  readonly warmRate?: number;
  /** Seconds of warm-up at `warmRate` before the measured phase (default 1; 0: none). */
  readonly warmSeconds?: number;
}

/**
 * Start a forwarder (the C one of samplicator's design, or anysrc), warm it up for `warmSeconds` at
 * `warmRate` (the JIT compiles the forward path then, as it would early in a long-running
 * service's life), then offer `rate` datagrams/s of `size` bytes from the server namespace for
 * `seconds`: count the copies the receivers in the client namespace got (C sinks, unconnected) and
 * what the forwarder's CPU spent meanwhile.
 */
export async function forwardOnce(rig: Rig, who: Contender, kind: TransportKind, run: ForwardRun): Promise<ForwardResult> {
  const { bed, bin, tun } = rig;
  const { family, rate, seconds, size, receivers: receiverCount, warmRate = 15_000, warmSeconds = 1 } = run;
  const host = family === 4 ? A.client4 : A.client6;
  const listen = family === 4 ? A.routerServerSide4 : A.routerServerSide6;
  const receivers = Array.from({ length: receiverCount }, () => host);
  /** Sinks on the receivers' ports, `load` from the server, then what the sinks counted. */
  const phase = async (loadRate: number, loadSeconds: number, during?: (load: Promise<number>) => Promise<void>) => {
    const sinks = receivers.map((r, i) => bed.spawn(bed.client, [bin.udp_sink!, r, String(9500 + i), String(loadSeconds + 10)]));
    for (const s of sinks) await s.waitFor((l) => l.ready === true);
    const load = bed.spawn(bed.server, [bin.udp_flood!, listen, "2055", String(loadSeconds), String(loadRate), String(size), "8"]);
    const sent = load.waitFor((l) => typeof l.sent === "number", (loadSeconds + 30) * 1000).then((l) => l.sent as number);
    if (during) await during(sent);
    let delivered = 0;
    for (const s of sinks) delivered += (await s.waitFor((l) => typeof l.received === "number", 30_000)).received as number;
    // Gone before the next phase binds the same ports (a sink still closing made that EADDRINUSE).
    for (const s of sinks) await s.exited(10_000);
    return { sent: await sent, delivered };
  };
  const forwarder = bed.spawn(bed.router, forwardArgv(bin, who, kind, family, receivers, tun));
  try {
    await forwarder.waitFor((l) => l.ready === true || l.event === "listening", 30_000);
    if (warmSeconds > 0) await phase(warmRate, warmSeconds);
    let cpu = 0;
    let user = 0;
    const r = await phase(rate, seconds, async (sent) => {
      const cpu0 = cpuTimes(forwarder.pid);
      await sent;
      // What the forwarder still holds in its socket buffer leaves within a moment.
      await sleep(300);
      const cpu1 = cpuTimes(forwarder.pid);
      cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system;
      user = cpu1.user - cpu0.user;
    });
    return {
      sent: r.sent,
      delivered: r.delivered,
      copiesPerSecond: r.delivered / seconds,
      lost: Math.max(0, r.sent * receiverCount - r.delivered),
      cpuUsPerDatagram: r.sent > 0 ? (cpu * 1e6) / r.sent : Number.NaN,
      userUsPerDatagram: r.sent > 0 ? (user * 1e6) / r.sent : Number.NaN,
    };
  } finally {
    await forwarder.stop();
  }
}
