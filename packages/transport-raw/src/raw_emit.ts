/**
 * How the raw backend puts a run of one family's datagrams on the wire: each message of the send
 * ring is the datagram's IP + UDP headers (built into the message's header slot) and its payload
 * where it lies, up to `batch` messages per sendmmsg. A datagram over its route's MTU becomes its
 * fragments — each one headers in a slot and a slice of the payload, still without a copy.
 * @module
 */
import {
  buildUdpHeaders,
  buildUdpPacket,
  countDrop,
  countError,
  type Datagram,
  errnoName,
  type FragmentCut,
  fragmentPacket,
  type PacketFields,
  type TransportStats,
  udpChecksumFor,
  udpFragmentCount,
  udpHeadersLength,
  writeUdpFragment,
} from "@anysrc/core";
import { linux, type SendRing } from "@anysrc/sys";
import type { RouteMtus } from "./route_mtus.ts";

/** One family's raw socket. */
export interface FamilySocket {
  readonly fd: number;
  readonly family: 4 | 6;
}

/** What the emit step works with. */
export interface RawEmitContext {
  readonly ring: SendRing;
  readonly batch: number;
  readonly fields: PacketFields;
  readonly mtus: RouteMtus;
  readonly stats: TransportStats;
  /** Read the socket's error queue (after EMSGSIZE the kernel queued the MTU it wanted). */
  readonly takeErrors: (fd: number) => void;
  /**
   * Address message `m` for datagram `d` (and its fragments). Default: `d.dst` as a sockaddr with
   * port 0 (an IPv6 raw socket reads sin6_port as a protocol); the packet transport gives the next
   * hop's sockaddr_ll instead.
   */
  readonly destination?: (ring: SendRing, m: number, d: Datagram) => void;
}

/** The emit step's context and what it reuses per ring fill. */
interface RawEmitState {
  readonly c: RawEmitContext;
  readonly destination: (ring: SendRing, m: number, d: Datagram) => void;
  /** Which datagram each message of the ring belongs to. */
  readonly owners: number[];
  /** A fragment's payload slice [start, end). */
  readonly slice: Int32Array;
  readonly cut: FragmentCut;
  /** Whole packets for the tiny-MTU path. */
  scratch: Uint8Array;
}

/** What one ring fill took: messages, the datagram after the last one taken, and whether a datagram sent alone hit EAGAIN. */
interface Fill {
  m: number;
  next: number;
  wait: boolean;
}

/**
 * The raw backend's emit step for the transport engine.
 * @example const emit = createRawEmit(context); emit(socket, datagrams, 0) // index of the first not sent
 */
export function createRawEmit(c: RawEmitContext): (s: FamilySocket, ds: readonly Datagram[], from: number) => number {
  const st: RawEmitState = {
    c,
    destination: c.destination ?? ((ring, m, d) => ring.setDestination(m, d.dst, 0)),
    owners: [],
    slice: new Int32Array(2),
    cut: { mtu: 0, index: 0, udpChecksum: 0 },
    scratch: new Uint8Array(0),
  };
  const filled: Fill = { m: 0, next: 0, wait: false };
  return (s, ds, from) => emit(st, filled, s, ds, from);
}

/** Send ds[from..] on `s`, a ring at a time; returns the index of the first datagram not sent (ds.length: all). */
function emit(st: RawEmitState, f: Fill, s: FamilySocket, ds: readonly Datagram[], from: number): number {
  const { ring, stats, mtus } = st.c;
  const owners = st.owners;
  let i = from;
  while (i < ds.length) {
    fill(st, f, s, ds, i);
    if (f.wait) return f.next;
    if (f.m === 0) {
      i = f.next;
      continue;
    }
    const n = ring.send(s.fd, 0, f.m);
    if (n === f.m) {
      account(st, ds, f.m);
      i = f.next;
      continue;
    }
    if (n > 0) {
      // Partial: everything before the first unsent message's datagram went out whole.
      const firstUnsent = owners[n]!;
      let whole = 0;
      while (whole < n && owners[whole]! < firstUnsent) whole++;
      account(st, ds, whole);
      i = firstUnsent;
      continue;
    }
    const e = -n;
    countError(stats, errnoName(e));
    if (e === linux.EAGAIN || e === linux.ENOBUFS) return owners[0]!;
    if (e === linux.EMSGSIZE) {
      st.c.takeErrors(s.fd);
      // The route's MTU shrank under us (a device's MTU lowered): fragment to the new one and go again.
      if (mtus.relearn(ds[owners[0]!]!.dst)) {
        i = owners[0]!;
        continue;
      }
    }
    // Any other error belongs to the first message's datagram: drop it, go on with the rest.
    countDrop(stats, "send-error");
    i = owners[0]! + 1;
  }
  return ds.length;
}

/** Fill the ring from `ds[i..]` into `f`. */
function fill(st: RawEmitState, f: Fill, s: FamilySocket, ds: readonly Datagram[], i: number): void {
  const { ring, batch, fields, mtus } = st.c;
  let m = 0;
  let j = i;
  st.owners.length = 0;
  f.wait = false;
  while (j < ds.length && m < batch) {
    const d = ds[j]!;
    const mtu = mtus.of(d.dst);
    if (udpHeadersLength(s.family) + d.payload.length <= mtu) {
      const h = buildUdpHeaders(ring.headers[m]!, 0, d.src, d.dst, d.payload, fields.of(d));
      st.destination(ring, m, d);
      ring.setHeaderAndPayload(m, h, ring.addressOf(d.payload), d.payload.length);
      st.owners[m++] = j++;
      continue;
    }
    const count = udpFragmentCount(s.family, d.payload.length, mtu);
    if (m > 0 && m + count > batch) break; // its own sendmmsg next time round
    if (count > batch) {
      // More fragments than ring slots (tiny MTU): this one datagram in several calls, alone.
      const wait = sendLarge(st, s, d, fragmentsOf(st, d, mtu)) === "wait";
      f.m = 0;
      f.next = wait ? j : j + 1;
      f.wait = wait;
      return;
    }
    m = fillFragments(st, d, j, m, count, mtu);
    j++;
  }
  f.m = m;
  f.next = j;
}

/** Datagram ds[j] as `count` fragments from message `m`, each its headers and a slice of the payload; returns the next message. */
function fillFragments(st: RawEmitState, d: Datagram, j: number, m: number, count: number, mtu: number): number {
  const { ring, fields } = st.c;
  const { cut, slice } = st;
  const f = fields.of(d);
  cut.mtu = mtu;
  cut.udpChecksum = udpChecksumFor(d.src, d.dst, d.payload);
  const at = ring.addressOf(d.payload);
  for (let k = 0; k < count; k++) {
    cut.index = k;
    const h = writeUdpFragment(ring.headers[m]!, 0, d, f, cut, slice);
    st.destination(ring, m, d);
    ring.setHeaderAndPayload(m, h, at + slice[0]!, slice[1]! - slice[0]!);
    st.owners[m++] = j;
  }
  return m;
}

/** Fragments of a datagram as whole packets (header checksum left to the kernel): the tiny-MTU path only. */
function fragmentsOf(st: RawEmitState, d: Datagram, mtu: number): Uint8Array[] {
  const need = udpHeadersLength(d.src.family) + d.payload.length;
  if (st.scratch.length < need) st.scratch = new Uint8Array(need);
  const f = st.c.fields.of(d);
  const n = buildUdpPacket(st.scratch, 0, d.src, d.dst, d.payload, f);
  return fragmentPacket(st.scratch.subarray(0, n), mtu, f.identification, f.checksums.ipv4Header);
}

/** One datagram's fragments, `batch` per call. */
function sendLarge(st: RawEmitState, s: FamilySocket, d: Datagram, frags: Uint8Array[]): "sent" | "wait" | "dropped" {
  const { ring, batch, stats } = st.c;
  for (let k = 0; k < frags.length;) {
    const m = Math.min(batch, frags.length - k);
    for (let x = 0; x < m; x++) {
      st.destination(ring, x, d);
      ring.setSingle(x, ring.addressOf(frags[k + x]!), frags[k + x]!.length);
    }
    const n = ring.send(s.fd, 0, m);
    if (n > 0) {
      k += n;
      stats.batches++;
      continue;
    }
    countError(stats, errnoName(-n));
    if (-n === linux.EAGAIN || -n === linux.ENOBUFS) return "wait";
    countDrop(stats, "send-error");
    return "dropped";
  }
  stats.sent++;
  stats.bytes += d.payload.length;
  stats.fragments += frags.length;
  return "sent";
}

/** Count messages [0, to) as sent: their datagrams, and fragments where a datagram took several. */
function account(st: RawEmitState, ds: readonly Datagram[], to: number): void {
  const { stats } = st.c;
  const owners = st.owners;
  stats.batches++;
  let last = -1;
  for (let k = 0; k < to; k++) {
    const o = owners[k]!;
    if (o === last) {
      stats.fragments++;
      continue;
    }
    if (k + 1 < to && owners[k + 1] === o) stats.fragments++;
    last = o;
    stats.sent++;
    stats.bytes += ds[o]!.payload.length;
  }
}
