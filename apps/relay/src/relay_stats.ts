/**
 * The relay's counters, and the three ways they leave the process: a one-line text summary, one JSON
 * line, and Prometheus text exposition.
 * @module
 */
import type { Transport } from "@anysrc/core";

/** Why the relay dropped a datagram (it never went anywhere). */
export type RelayDropReason =
  | "no-original-destination"
  | "truncated"
  | "nat-restricted"
  | "upstream-busy"
  | "upstream-error"
  | "session-error"
  | "transport-refused"
  | "sender-not-allowed";

/** Counters, plain numbers. */
export interface RelayCounters {
  /** Datagrams read from clients (tproxy) or senders (forward). */
  received: number;
  /** Datagrams sent on: upstream (tproxy) or to receivers (forward). */
  forwarded: number;
  /** Replies sent back to clients through the transport (tproxy). */
  replies: number;
  sessions: number;
  sessionsCreated: number;
  sessionsExpired: number;
  sessionsEvicted: number;
  /** ICMP errors reported on upstream sockets (ECONNREFUSED and friends). */
  icmpErrors: number;
  /** Datagrams the primary transport refused and the fallback sent. */
  fallback: number;
  dropped: Partial<Record<RelayDropReason, number>>;
}

/** Fresh counters. */
export function createRelayCounters(): RelayCounters {
  return { received: 0, forwarded: 0, replies: 0, sessions: 0, sessionsCreated: 0, sessionsExpired: 0, sessionsEvicted: 0, icmpErrors: 0, fallback: 0, dropped: {} };
}

/** Count a drop. */
export function countRelayDrop(c: RelayCounters, reason: RelayDropReason, n = 1): void {
  c.dropped[reason] = (c.dropped[reason] ?? 0) + n;
}

/** A snapshot of everything, JSON-ready. */
export function statsSnapshot(mode: string, c: RelayCounters, transports: readonly Transport[]): Record<string, unknown> {
  return {
    mode,
    ...c,
    dropped: { ...c.dropped },
    transports: Object.fromEntries(transports.map((t) => [t.kind, { ...t.stats, dropped: { ...t.stats.dropped }, errors: { ...t.stats.errors } }])),
  };
}

const pairs = (o: Record<string, number | undefined>) =>
  Object.entries(o).filter(([, v]) => v).map(([k, v]) => `${k}=${v}`).join(",") || "0";

/**
 * One line for people.
 * @example "tproxy received=10 forwarded=10 replies=10 sessions=1 dropped=0 raw{sent=10 errors=0}"
 */
export function statsLine(mode: string, c: RelayCounters, transports: readonly Transport[]): string {
  const t = transports.map((x) => `${x.kind}{sent=${x.stats.sent} queued=${x.stats.queued} dropped=${pairs(x.stats.dropped)} errors=${pairs(x.stats.errors)}}`).join(" ");
  return `${mode} received=${c.received} forwarded=${c.forwarded} replies=${c.replies} sessions=${c.sessions} created=${c.sessionsCreated} expired=${c.sessionsExpired} evicted=${c.sessionsEvicted} icmp=${c.icmpErrors} fallback=${c.fallback} dropped=${pairs(c.dropped)} ${t}`;
}

/** Prometheus text exposition (version 0.0.4). */
export function prometheusText(mode: string, c: RelayCounters, transports: readonly Transport[]): string {
  const lines: string[] = [];
  const metric = (name: string, type: "counter" | "gauge", help: string, samples: [Record<string, string>, number][]) => {
    lines.push(`# HELP anysrc_${name} ${help}`, `# TYPE anysrc_${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries({ mode, ...labels }).map(([k, v]) => `${k}="${v}"`).join(",");
      lines.push(`anysrc_${name}{${l}} ${value}`);
    }
  };
  metric("received_total", "counter", "Datagrams read from clients or senders.", [[{}, c.received]]);
  metric("forwarded_total", "counter", "Datagrams sent upstream or to receivers.", [[{}, c.forwarded]]);
  metric("replies_total", "counter", "Replies sent to clients.", [[{}, c.replies]]);
  metric("sessions", "gauge", "Open sessions.", [[{}, c.sessions]]);
  metric("sessions_created_total", "counter", "Sessions created.", [[{}, c.sessionsCreated]]);
  metric("sessions_expired_total", "counter", "Sessions closed after the idle timeout.", [[{}, c.sessionsExpired]]);
  metric("sessions_evicted_total", "counter", "Sessions evicted past the session cap.", [[{}, c.sessionsEvicted]]);
  metric("icmp_errors_total", "counter", "ICMP errors on upstream sockets.", [[{}, c.icmpErrors]]);
  metric("fallback_total", "counter", "Datagrams sent by the fallback transport.", [[{}, c.fallback]]);
  metric("dropped_total", "counter", "Datagrams dropped by the relay, by reason.", Object.entries(c.dropped).map(([r, v]) => [{ reason: r }, v ?? 0]));
  metric("transport_sent_total", "counter", "Datagrams handed to the kernel by a transport.", transports.map((t) => [{ transport: t.kind }, t.stats.sent]));
  metric("transport_queued", "gauge", "Datagrams waiting for writability.", transports.map((t) => [{ transport: t.kind }, t.stats.queued]));
  metric("transport_dropped_total", "counter", "Datagrams a transport dropped, by reason.",
    transports.flatMap((t) => Object.entries(t.stats.dropped).map(([r, v]): [Record<string, string>, number] => [{ transport: t.kind, reason: r }, v ?? 0])));
  metric("transport_errors_total", "counter", "Failed syscalls of a transport, by errno.",
    transports.flatMap((t) => Object.entries(t.stats.errors).map(([code, v]): [Record<string, string>, number] => [{ transport: t.kind, errno: code }, v])));
  return `${lines.join("\n")}\n`;
}
