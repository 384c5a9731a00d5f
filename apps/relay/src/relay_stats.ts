/**
 * The relay's counters, and the three ways they leave the process: a one-line text summary, one JSON
 * line, and Prometheus text exposition.
 * @module
 */
import type { Transport } from "@anysrc/core";

/** What stats read of a transport: its name and counters (a worker's arrive as JSON, without the rest). */
export type TransportView = Pick<Transport, "kind" | "stats">;

/** Why the relay dropped a datagram from a client (tproxy) or a sender (forward). */
export const INBOUND_DROPS = [
  "no-original-destination",
  "truncated",
  // The original destination is not a unicast address (multicast, broadcast, unspecified): a reply
  // from it would carry a source no host can have.
  "bad-destination",
  // The datagram came from one of the relay's own upstream sockets (a client addressed the relay
  // itself): relaying it again would loop.
  "loop",
  "upstream-busy",
  "upstream-error",
  "session-error",
  "sender-not-allowed",
  // Forward: no receiver of the sender's IP family.
  "no-receiver",
  // `--ttl keep`: it arrived with TTL 1 (0 once decremented), as a router would drop it.
  "ttl-expired",
  // Forward: every receiver of its sender samples (1 in N) and passed this one over.
  "sampled-out",
] as const;

/** Why the relay dropped a reply (tproxy) or one copy (forward) before any transport took it. */
export const OUTBOUND_DROPS = ["nat-restricted", "transport-refused", "copy-refused", "reply-ttl-expired"] as const;

/** Why the relay dropped a datagram (it never went anywhere). */
export type RelayDropReason = (typeof INBOUND_DROPS)[number] | (typeof OUTBOUND_DROPS)[number];

/** Counters, plain numbers. */
export interface RelayCounters {
  /** Datagrams read from clients (tproxy) or senders (forward). */
  received: number;
  /** Datagrams sent on: upstream (tproxy) or to the receivers (forward, counted once per datagram). */
  forwarded: number;
  /** Forward: copies accepted by the transport (one per receiver of the sender's family). */
  copies: number;
  /** Datagrams read from upstream sockets (tproxy). */
  repliesReceived: number;
  /**
   * Replies accepted by the transport (tproxy): handed to the kernel, queued, or dropped and counted
   * by the transport under its own reasons (`transports.*.dropped`).
   */
  replies: number;
  sessions: number;
  sessionsCreated: number;
  sessionsExpired: number;
  sessionsEvicted: number;
  /** ICMP errors reported on upstream sockets (ECONNREFUSED and friends). */
  icmpErrors: number;
  /**
   * The error-queue entries behind them (IP_RECVERR), by kind: `icmp-port-unreachable`,
   * `icmp-frag-needed`, `icmp6-packet-too-big`, `local-EMSGSIZE`, …
   */
  icmpErrorKinds: Record<string, number>;
  /** Datagrams the primary transport refused and the fallback sent. */
  fallback: number;
  dropped: Partial<Record<RelayDropReason, number>>;
  /** Syscall failures the relay met, by errno name (EMFILE when out of descriptors, …). */
  errors: Record<string, number>;
  /**
   * Datagrams the kernel dropped on the relay's own sockets before the relay could read them
   * (receive buffer full), by socket class: from SO_RXQ_OVFL on every datagram read, and SO_MEMINFO
   * when a socket closes (and for listeners whenever stats are taken). They never reached `received`
   * (listener) or `repliesReceived` (upstream), so the identities below hold without them.
   */
  kernelDropped: Record<KernelDropClass, number>;
  /** Reads that carried several datagrams coalesced by the kernel (UDP_GRO), and the datagrams in them. */
  coalescedReads: number;
  coalescedDatagrams: number;
  /** Of `forwarded`: datagrams that went upstream inside GSO sends (UDP_SEGMENT). */
  coalescedForwarded: number;
  /** Sockets of the relay on which the kernel refused an offload (UDP_GRO, a GSO send): plain from then on. */
  offloadFallbacks: number;
  /** Forward: each receiver's own counters (empty for tproxy). */
  receivers: readonly ReceiverCounters[];
}

/** What one receiver got, JSON-ready; `receiver` is its canonical name. */
export interface ReceiverCounters {
  readonly receiver: string;
  /** Copies handed to the transport (or, for `plain`, to the forwarder's own socket). */
  copies: number;
  /** Datagrams its 1-in-N sampling passed over. */
  sampledOut: number;
  /** Payload bytes of its copies. */
  bytes: number;
  /** ICMP errors the kernel reported for it (unreachable, …; seen for `plain` receivers, whose source is ours). */
  icmpUnreachable: number;
  /** Sends to it that failed (by the forwarder's own socket), any errno. */
  errors: number;
}

/** The relay's receiving sockets, as the kernel-drop counters split them. */
export const KERNEL_DROP_CLASSES = ["listener", "upstream"] as const;
export type KernelDropClass = (typeof KERNEL_DROP_CLASSES)[number];

/** A socket's kernel drop count as last seen (SO_RXQ_OVFL / SO_MEMINFO), so increases are counted once. */
export interface DropWatch {
  drops: number;
}

/**
 * Count the increase of a socket's running kernel drop count (`count`, as SO_RXQ_OVFL or
 * SO_MEMINFO report it) under its class; a count not above the last one seen adds nothing.
 * @example countKernelDrops(counters, "upstream", session, ring.dropCount(n - 1));
 */
export function countKernelDrops(c: RelayCounters, socket: KernelDropClass, watch: DropWatch, count: number): void {
  if (count <= watch.drops) return;
  c.kernelDropped[socket] += count - watch.drops;
  watch.drops = count;
}

/** Fresh counters. */
export function createRelayCounters(): RelayCounters {
  return {
    received: 0,
    forwarded: 0,
    copies: 0,
    repliesReceived: 0,
    replies: 0,
    sessions: 0,
    sessionsCreated: 0,
    sessionsExpired: 0,
    sessionsEvicted: 0,
    icmpErrors: 0,
    icmpErrorKinds: {},
    fallback: 0,
    dropped: {},
    errors: {},
    kernelDropped: { listener: 0, upstream: 0 },
    coalescedReads: 0,
    coalescedDatagrams: 0,
    coalescedForwarded: 0,
    offloadFallbacks: 0,
    receivers: [],
  };
}

/**
 * Count a read that held `datagrams` datagrams: more than one means the kernel coalesced them (UDP_GRO).
 * @example countCoalesced(counters, ring.datagramCount(i))
 */
export function countCoalesced(c: RelayCounters, datagrams: number): void {
  if (datagrams <= 1) return;
  c.coalescedReads++;
  c.coalescedDatagrams += datagrams;
}

/** Count a drop. */
export function countRelayDrop(c: RelayCounters, reason: RelayDropReason, n = 1): void {
  c.dropped[reason] = (c.dropped[reason] ?? 0) + n;
}

/** Count a syscall failure by errno name. */
export function countRelayError(c: RelayCounters, code: string): void {
  c.errors[code] = (c.errors[code] ?? 0) + 1;
}

/** Count one error-queue entry of an upstream socket by kind ({@link queuedErrorKind}). */
export function countIcmpErrorKind(c: RelayCounters, kind: string): void {
  c.icmpErrorKinds[kind] = (c.icmpErrorKinds[kind] ?? 0) + 1;
}

const sumOf = (c: RelayCounters, reasons: readonly RelayDropReason[]) => reasons.reduce((a, r) => a + (c.dropped[r] ?? 0), 0);

/**
 * Datagrams the counters cannot account for; both are 0 unless the relay lost something silently.
 * inbound = received − forwarded − inbound drops; replies = repliesReceived − replies − nat-restricted − transport-refused − reply-ttl-expired.
 * @example unaccounted(counters) // { inbound: 0, replies: 0 }
 */
export function unaccounted(c: RelayCounters): { inbound: number; replies: number } {
  return {
    inbound: c.received - c.forwarded - sumOf(c, INBOUND_DROPS),
    replies: c.repliesReceived - c.replies - (c.dropped["nat-restricted"] ?? 0) - (c.dropped["transport-refused"] ?? 0) - (c.dropped["reply-ttl-expired"] ?? 0),
  };
}

/** A snapshot of everything, JSON-ready. */
export function statsSnapshot(mode: string, c: RelayCounters, transports: readonly TransportView[]): Record<string, unknown> {
  return {
    mode,
    ...c,
    dropped: { ...c.dropped },
    errors: { ...c.errors },
    icmpErrorKinds: { ...c.icmpErrorKinds },
    kernelDropped: { ...c.kernelDropped },
    receivers: c.receivers.map((r) => ({ ...r })),
    unaccounted: unaccounted(c),
    transports: Object.fromEntries(
      transports.map((t) => [t.kind, { ...t.stats, dropped: { ...t.stats.dropped }, errors: { ...t.stats.errors }, reported: { ...t.stats.reported } }]),
    ),
  };
}

/**
 * One logfmt value: bare when it is a plain token, otherwise a quoted string (JSON escaping, which
 * logfmt parsers read) — so `key=value` pairs never nest.
 * @example logfmtValue("198.18.1.2:53") // "198.18.1.2:53"; logfmtValue('a "b"') // '"a \\"b\\""'
 */
export function logfmtValue(v: unknown): string {
  const text = typeof v === "string" ? v : JSON.stringify(v) ?? "null";
  return /^[A-Za-z0-9_.:/@+\-[\]]+$/.test(text) ? text : JSON.stringify(text);
}

/** `prefix.key=value` for every non-zero entry, or `prefix=0` when there is none. */
const nested = (prefix: string, o: Record<string, number | undefined>) => {
  const set = Object.entries(o).filter(([, v]) => v);
  return set.length ? set.map(([k, v]) => `${prefix}.${k}=${v}`).join(" ") : `${prefix}=0`;
};

/**
 * One logfmt line for people and log parsers, stamped with the time (RFC 3339).
 * `lead` follows the time (`event=final signal=SIGTERM` for the last one).
 * @example "time=2026-12-02T17:00:00.000Z event=stats mode=tproxy received=10 forwarded=10 replies=10 … dropped=0 kernel_dropped=0 errors=0 raw.sent=10 raw.queued=0 raw.dropped=0 raw.errors=0"
 */
export function statsLine(mode: string, c: RelayCounters, transports: readonly TransportView[], lead = "event=stats", now: Date = new Date()): string {
  const t = transports.map((x) =>
    `${x.kind}.sent=${x.stats.sent} ${x.kind}.queued=${x.stats.queued} ${nested(`${x.kind}.dropped`, x.stats.dropped)} ${
      nested(`${x.kind}.errors`, x.stats.errors)
    }`
  ).join(" ");
  const extra = mode === "forward" ? `copies=${c.copies}` : `replies=${c.replies}`;
  return `time=${now.toISOString()} ${lead} mode=${mode} received=${c.received} forwarded=${c.forwarded} ${extra} sessions=${c.sessions} created=${c.sessionsCreated} expired=${c.sessionsExpired} evicted=${c.sessionsEvicted} icmp=${c.icmpErrors} fallback=${c.fallback} ${
    nested("dropped", c.dropped)
  } ${nested("kernel_dropped", c.kernelDropped)} ${nested("errors", c.errors)} ${t}`.trimEnd();
}

/** The process around the counters, for `process_*` and `anysrc_build_info`. */
export interface ProcessFacts {
  readonly cpuSeconds: number;
  readonly residentBytes: number;
  readonly openFds: number;
  readonly startTimeSeconds: number;
  readonly version: string;
  readonly runtime: string;
  readonly runtimeVersion: string;
}

/** The anysrc version these counters belong to (the relay package's). */
export const ANYSRC_VERSION = "0.1.0";

/**
 * Prometheus text exposition (version 0.0.4). Every drop reason is present from the start (0 until
 * it happens), so a rate() over it never starts from a missing series; with `process`, the standard
 * `process_*` gauges and `anysrc_build_info` too.
 */
export function prometheusText(mode: string, c: RelayCounters, transports: readonly TransportView[], process?: ProcessFacts): string {
  return prometheusTextOf(mode, [{ labels: {}, counters: c, transports }], process);
}

/** One labelled set of counters in an exposition: a worker's (`{ worker: "0" }`), or their sum. */
export interface MetricSet {
  readonly labels: Readonly<Record<string, string>>;
  readonly counters: RelayCounters;
  readonly transports: readonly TransportView[];
}

/**
 * {@link prometheusText} over several sets: each family once, with every set's samples under the
 * set's labels (a supervisor's `worker="all"` and one per worker); `extra` writes families of its own.
 * @example prometheusTextOf("tproxy", [{ labels: { worker: "all" }, counters, transports }], facts)
 */
export function prometheusTextOf(mode: string, sets: readonly MetricSet[], process?: ProcessFacts, extra?: (metric: MetricWriter) => void): string {
  const families = new Map<string, { head: string[]; samples: string[] }>();
  let labels: Readonly<Record<string, string>> = {};
  const metric: MetricWriter = (name, type, help, samples) => {
    let family = families.get(name);
    if (!family) families.set(name, family = { head: [`# HELP anysrc_${name} ${help}`, `# TYPE anysrc_${name} ${type}`], samples: [] });
    for (const [own, value] of samples) {
      const l = Object.entries({ mode, ...labels, ...own }).map(([k, v]) => `${k}="${v}"`).join(",");
      family.samples.push(`anysrc_${name}{${l}} ${value}`);
    }
  };
  for (const set of sets) {
    labels = set.labels;
    relayMetrics(metric, set.counters);
    if (set.counters.receivers.length > 0) receiverMetrics(metric, set.counters.receivers);
    metric(
      "errors_total",
      "counter",
      "Syscall failures met by the relay, by errno.",
      Object.entries(set.counters.errors).map(([code, v]) => [{ errno: code }, v]),
    );
    transportMetrics(metric, set.transports);
  }
  labels = {};
  extra?.(metric);
  if (process) {
    metric("build_info", "gauge", "anysrc version and the runtime running it.", [[{
      version: process.version,
      runtime: process.runtime,
      runtime_version: process.runtimeVersion,
    }, 1]]);
  }
  const lines = [...families.values()].flatMap((f) => [...f.head, ...f.samples]);
  if (process) processMetrics(lines, process);
  return `${lines.join("\n")}\n`;
}

/** One metric family: its samples as (labels, value); `mode` (and the set's labels) are added to every sample's. */
export type MetricWriter = (name: string, type: "counter" | "gauge", help: string, samples: [Record<string, string>, number][]) => void;

function relayMetrics(metric: MetricWriter, c: RelayCounters): void {
  metric("received_total", "counter", "Datagrams read from clients or senders.", [[{}, c.received]]);
  metric("forwarded_total", "counter", "Datagrams sent upstream or to receivers.", [[{}, c.forwarded]]);
  metric("copies_total", "counter", "Copies accepted by the transport (forward).", [[{}, c.copies]]);
  metric("replies_received_total", "counter", "Datagrams read from upstream sockets.", [[{}, c.repliesReceived]]);
  metric("replies_total", "counter", "Replies accepted by the transport for clients.", [[{}, c.replies]]);
  metric("sessions", "gauge", "Open sessions.", [[{}, c.sessions]]);
  metric("sessions_created_total", "counter", "Sessions created.", [[{}, c.sessionsCreated]]);
  metric("sessions_expired_total", "counter", "Sessions closed after the idle timeout.", [[{}, c.sessionsExpired]]);
  metric("sessions_evicted_total", "counter", "Sessions evicted past the session cap.", [[{}, c.sessionsEvicted]]);
  metric("icmp_errors_total", "counter", "ICMP errors on upstream sockets.", [[{}, c.icmpErrors]]);
  metric(
    "icmp_error_kinds_total",
    "counter",
    "Error-queue entries of upstream sockets (IP_RECVERR), by kind.",
    Object.entries(c.icmpErrorKinds).map(([k, v]) => [{ kind: k }, v]),
  );
  metric("fallback_total", "counter", "Datagrams sent by the fallback transport.", [[{}, c.fallback]]);
  metric(
    "dropped_total",
    "counter",
    "Datagrams dropped by the relay, by reason.",
    [...INBOUND_DROPS, ...OUTBOUND_DROPS].map((r) => [{ reason: r }, c.dropped[r] ?? 0]),
  );
  metric(
    "kernel_dropped_total",
    "counter",
    "Datagrams the kernel dropped on the relay's receiving sockets (receive buffer full), by socket class.",
    KERNEL_DROP_CLASSES.map((k) => [{ socket: k }, c.kernelDropped[k]]),
  );
}

function receiverMetrics(metric: MetricWriter, receivers: readonly ReceiverCounters[]): void {
  const perReceiver = (name: string, help: string, value: (r: ReceiverCounters) => number) =>
    metric(name, "counter", help, receivers.map((r) => [{ receiver: r.receiver }, value(r)]));
  perReceiver("receiver_copies_total", "Copies sent to a receiver (forward).", (r) => r.copies);
  perReceiver("receiver_sampled_out_total", "Datagrams a receiver's 1-in-N sampling passed over.", (r) => r.sampledOut);
  perReceiver("receiver_bytes_total", "Payload bytes of a receiver's copies.", (r) => r.bytes);
  perReceiver("receiver_icmp_errors_total", "ICMP errors reported for a receiver (plain receivers).", (r) => r.icmpUnreachable);
  perReceiver("receiver_errors_total", "Failed sends to a receiver.", (r) => r.errors);
}

function transportMetrics(metric: MetricWriter, transports: readonly TransportView[]): void {
  metric("transport_sent_total", "counter", "Datagrams handed to the kernel by a transport.", transports.map((t) => [{ transport: t.kind }, t.stats.sent]));
  metric("transport_queued", "gauge", "Datagrams waiting for writability.", transports.map((t) => [{ transport: t.kind }, t.stats.queued]));
  // packet: datagrams its next-hop cache could not frame yet, sent through its raw socket.
  const viaRaw = transports.filter((t) => typeof (t.stats as { viaRaw?: unknown }).viaRaw === "number");
  if (viaRaw.length > 0) {
    metric(
      "transport_via_raw_total",
      "counter",
      "Datagrams the packet transport sent through its raw socket while their next hop was not known.",
      viaRaw.map((t) => [{ transport: t.kind }, (t.stats as unknown as { viaRaw: number }).viaRaw]),
    );
  }
  metric(
    "transport_dropped_total",
    "counter",
    "Datagrams a transport dropped, by reason.",
    transports.flatMap((t) => Object.entries(t.stats.dropped).map(([r, v]): [Record<string, string>, number] => [{ transport: t.kind, reason: r }, v ?? 0])),
  );
  metric(
    "transport_errors_total",
    "counter",
    "Failed syscalls of a transport, by errno.",
    transports.flatMap((t) => Object.entries(t.stats.errors).map(([code, v]): [Record<string, string>, number] => [{ transport: t.kind, errno: code }, v])),
  );
  metric(
    "transport_reported_total",
    "counter",
    "Errors the kernel reported on a transport's error queue (IP_RECVERR), by kind.",
    transports.flatMap((t) => Object.entries(t.stats.reported).map(([k, v]): [Record<string, string>, number] => [{ transport: t.kind, kind: k }, v])),
  );
}

function processMetrics(lines: string[], process: ProcessFacts): void {
  // The standard process metrics, unprefixed as Prometheus clients name them.
  const standard = (name: string, type: "counter" | "gauge", help: string, value: number) => {
    if (Number.isNaN(value)) return;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
  };
  standard("process_cpu_seconds_total", "counter", "User and system CPU time spent, seconds.", process.cpuSeconds);
  standard("process_resident_memory_bytes", "gauge", "Resident memory, bytes.", process.residentBytes);
  standard("process_open_fds", "gauge", "Open file descriptors.", process.openFds);
  standard("process_start_time_seconds", "gauge", "Start time of the process since the epoch, seconds.", process.startTimeSeconds);
}
