/**
 * How the bind-source backend puts a run of one source's datagrams on the wire: one sendmmsg on
 * that source's socket, each message a datagram (its TOS and TTL as control messages) or, where
 * the socket allows UDP_SEGMENT, a run of same-size datagrams to one destination as one GSO message.
 * @module
 */
import { countDrop, countError, type Datagram, errnoName, formatSocketAddress, gsoRunLength, type TransportStats, udpHeadersLength } from "@anysrc/core";
import { isPendingIcmpError, linux, type SendRing } from "@anysrc/sys";
import type { SourceSocket } from "./bind_source_cache.ts";

/** What the emit step works with. */
export interface BindSourceEmitContext {
  readonly ring: SendRing;
  readonly batch: number;
  readonly stats: TransportStats;
  /** GSO asked for (a socket that was refused it sends plainly from then on). */
  readonly offload: boolean;
  /** The path MTU GSO segments must fit. */
  readonly segmentMtu: number;
  /** Told once, when the kernel first refuses a GSO send. */
  readonly onOffloadFallback: ((reason: string) => void) | undefined;
}

/** The emit step's context and what it keeps between calls. */
interface BindSourceEmitState {
  readonly c: BindSourceEmitContext;
  /** Datagrams in each message of the ring: 1, or a GSO run's length. */
  readonly perMessage: Int32Array;
  /** Whether the first GSO refusal was told. */
  told: boolean;
}

/**
 * The bind-source backend's emit step for the transport engine.
 * @example const emit = createBindSourceEmit(context); emit(socket, datagrams, 0) // index of the first not sent
 */
export function createBindSourceEmit(c: BindSourceEmitContext): (s: SourceSocket, ds: readonly Datagram[], from: number) => number {
  const st: BindSourceEmitState = { c, perMessage: new Int32Array(c.batch), told: false };
  return (s, ds, from) => emit(st, s, ds, from);
}

/** Send ds[from..] from `s`, a ring at a time; returns the index of the first datagram not sent (ds.length: all). */
function emit(st: BindSourceEmitState, s: SourceSocket, ds: readonly Datagram[], from: number): number {
  const { ring, stats } = st.c;
  let i = from;
  let retried = false;
  while (i < ds.length) {
    const sent = ring.send(s.fd, 0, fill(st, s, ds, i));
    if (sent > 0) {
      retried = false;
      i = account(st, ds, i, sent);
      continue;
    }
    const e = -sent;
    countError(stats, errnoName(e));
    if (e === linux.EAGAIN || e === linux.ENOBUFS) return i;
    if (st.perMessage[0]! > 1) {
      refuseOffload(st, s, e);
      continue;
    }
    // An ICMP error reported earlier (IP_RECVERR sets the socket's pending error) fails the next
    // send and is cleared by it: that datagram was not the cause, so it gets one more try.
    if (!retried && isPendingIcmpError(e)) {
      retried = true;
      continue;
    }
    retried = false;
    countDrop(stats, "send-error");
    i++;
  }
  return ds.length;
}

/**
 * The kernel refused the GSO send (EMSGSIZE: a segment over the route MTU; EINVAL: an old kernel; EIO:
 * no checksum offload on the way out): this socket sends plainly from now on; nothing was lost.
 */
function refuseOffload(st: BindSourceEmitState, s: SourceSocket, e: number): void {
  s.gso = false;
  st.c.stats.offloadFallbacks++;
  if (st.told) return;
  st.told = true;
  st.c.onOffloadFallback?.(`bindsrc: a GSO send from ${formatSocketAddress(s.source)} was refused (${errnoName(e)}); that socket sends plainly`);
}

/** Fill the ring from `ds[i..]`; returns the number of messages. */
function fill(st: BindSourceEmitState, s: SourceSocket, ds: readonly Datagram[], i: number): number {
  const { ring, batch, offload, segmentMtu } = st.c;
  let m = 0;
  let j = i;
  while (j < ds.length && m < batch) {
    const d = ds[j]!;
    const n = offload && s.gso ? gsoRunLength(ds, j, ds.length, segmentMtu - udpHeadersLength(d.src.family)) : 1;
    ring.setDestination(m, d.dst);
    if (n === 1) ring.setSingle(m, ring.addressOf(d.payload), d.payload.length);
    else {
      for (let k = 0; k < n; k++) {
        const p = ds[j + k]!.payload;
        ring.setIovec(m, k, ring.addressOf(p), p.length);
      }
      ring.setIovecCount(m, n);
    }
    ring.setSegmentSize(m, n === 1 ? 0 : d.payload.length);
    // The datagram's own class and TTL as cmsgs (a run shares them); the socket's default TOS is 0.
    ring.setIpFields(m, d.src.family, d.tos ? d.tos : -1, d.ttl ?? -1);
    st.perMessage[m++] = n;
    j += n;
  }
  return m;
}

/** Count the first `sent` messages (from datagram `i`) as sent; returns the datagram after them. */
function account(st: BindSourceEmitState, ds: readonly Datagram[], i: number, sent: number): number {
  const stats = st.c.stats;
  stats.batches++;
  for (let k = 0; k < sent; k++) {
    const n = st.perMessage[k]!;
    stats.sent += n;
    if (n > 1) stats.coalesced += n;
    for (let x = 0; x < n; x++) stats.bytes += ds[i + x]!.payload.length;
    i += n;
  }
  return i;
}
