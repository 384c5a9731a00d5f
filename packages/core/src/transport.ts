/**
 * The contract every backend implements, and the checks they share.
 * @module
 */
import { formatSocketAddress, type SocketAddress } from "./address.ts";
import { TransportError } from "./errors.ts";
import { maxUdpPayload } from "./packet.ts";

/**
 * Which backend emits the datagram: its own name ("raw", "bindsrc", "tun" are anysrc's). Core
 * defines the contract, not the list of its implementers.
 */
export type TransportKind = string;

/** One UDP datagram to emit: the receiver must see `src` exactly as given. */
export interface Datagram {
  readonly src: SocketAddress;
  readonly dst: SocketAddress;
  readonly payload: Uint8Array;
  /**
   * The IPv4 TOS byte / IPv6 traffic class it leaves with: DSCP (upper six bits) and ECN (lower two),
   * what a relay read with the original (IP_RECVTOS). Absent: 0, as the kernel's own default.
   */
  readonly tos?: number | undefined;
  /** Its TTL / hop limit (1–255). Absent: the transport's default (64, or the system's for kernel-built packets). */
  readonly ttl?: number | undefined;
}

/**
 * Why an accepted datagram never reached the kernel: the reasons every backend shares, or one of a
 * backend's own (bindsrc's "address-in-use" and "stray", tun's "device-gone").
 */
export type DropReason = "queue-full" | "send-error" | "too-big" | "closed" | (string & Record<never, never>);

/** Counters every transport keeps; plain numbers so they serialise as JSON. */
export interface TransportStats {
  /** Datagrams handed to the kernel. */
  sent: number;
  /** UDP payload bytes handed to the kernel. */
  bytes: number;
  /** Batched syscalls (sendmmsg / writev) made. */
  batches: number;
  /** IP fragments written (0 when nothing needed fragmenting). */
  fragments: number;
  /** Of `sent`: datagrams that left inside a GSO send (UDP_SEGMENT, a TUN super-packet), cut by the kernel. */
  coalesced: number;
  /** Times the kernel refused a GSO send and the backend went back to plain sends (the datagrams went out plainly). */
  offloadFallbacks: number;
  /** Datagrams waiting for the socket to become writable right now. */
  queued: number;
  /** Dropped datagrams by reason. */
  dropped: Partial<Record<DropReason, number>>;
  /** Failed syscalls by errno name (`EAGAIN`, `EADDRINUSE`, …). */
  errors: Record<string, number>;
  /**
   * Errors the kernel reported on the backend's sockets after the fact (their error queues, with
   * IP_RECVERR), by kind: `local-EMSGSIZE` (an MTU shrank under us), `icmp-port-unreachable`, …
   */
  reported: Record<string, number>;
}

/**
 * A way to emit UDP datagrams with any source address.
 * `send`/`sendBatch` validate synchronously (throwing {@link TransportError} and sending nothing),
 * then emit now or queue up to a bound; they never block the event loop.
 */
export interface Transport {
  readonly kind: TransportKind;
  send(d: Datagram): void;
  /** Emit many at once: one sendmmsg where the backend allows. */
  sendBatch(ds: readonly Datagram[]): void;
  readonly stats: Readonly<TransportStats>;
  /** Flush what was accepted, then release sockets and devices. */
  close(): Promise<void>;
}

/** Fresh zeroed counters. */
export function createTransportStats(): TransportStats {
  return { sent: 0, bytes: 0, batches: 0, fragments: 0, coalesced: 0, offloadFallbacks: 0, queued: 0, dropped: {}, errors: {}, reported: {} };
}

/** Count a drop by reason. */
export function countDrop(stats: TransportStats, reason: DropReason, n = 1): void {
  stats.dropped[reason] = (stats.dropped[reason] ?? 0) + n;
}

/** Count an error the kernel reported (an error-queue entry) by kind. */
export function countReported(stats: TransportStats, kind: string, n = 1): void {
  stats.reported[kind] = (stats.reported[kind] ?? 0) + n;
}

/** Count a failed syscall by errno name. */
export function countError(stats: TransportStats, code: string, n = 1): void {
  stats.errors[code] = (stats.errors[code] ?? 0) + n;
}

/**
 * The checks shared by every backend, before anything is sent.
 * @example validateDatagram({ src, dst, payload }) // throws TransportError("bad-port", …) for port 0
 * @throws {TransportError} mixed families, destination port 0, payload over the family maximum, a TOS or TTL out of range.
 */
export function validateDatagram(d: Datagram): void {
  if (d.src.family !== d.dst.family) {
    throw new TransportError("mixed-families", `source ${formatSocketAddress(d.src)} and destination ${formatSocketAddress(d.dst)} are different IP families`);
  }
  if (d.dst.port === 0) throw new TransportError("bad-port", `destination port 0 in ${formatSocketAddress(d.dst)}`);
  if (d.src.port === 0) throw new TransportError("bad-source", `source port 0 in ${formatSocketAddress(d.src)}`);
  if (d.tos !== undefined && !(d.tos >= 0 && d.tos <= 255 && Number.isInteger(d.tos))) {
    throw new TransportError("bad-ip-field", `TOS / traffic class ${d.tos} is not a byte (0-255) for ${formatSocketAddress(d.dst)}`);
  }
  if (d.ttl !== undefined && !(d.ttl >= 1 && d.ttl <= 255 && Number.isInteger(d.ttl))) {
    throw new TransportError("bad-ip-field", `TTL / hop limit ${d.ttl} is outside 1-255 for ${formatSocketAddress(d.dst)}`);
  }
  const max = maxUdpPayload(d.src.family);
  if (d.payload.length > max) {
    throw new TransportError("payload-too-large", `payload of ${d.payload.length} bytes exceeds the IPv${d.src.family} maximum of ${max}`);
  }
}

/**
 * `send` in terms of `sendBatch`, reusing one array so that sending one datagram allocates nothing.
 * @example const send = sendOneThrough(sendBatch); send({ src, dst, payload });
 */
export function sendOneThrough(sendBatch: (ds: readonly Datagram[]) => void): (d: Datagram) => void {
  const one: Datagram[] = [];
  return (d) => {
    one[0] = d;
    sendBatch(one);
  };
}
