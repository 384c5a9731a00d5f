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
}

/**
 * The raw backend's emit step for the transport engine.
 * @example const emit = createRawEmit(context); emit(socket, datagrams, 0) // index of the first not sent
 */
export function createRawEmit(c: RawEmitContext): (s: FamilySocket, ds: readonly Datagram[], from: number) => number {
  const { ring, batch, fields, mtus, stats } = c;
  // Per ring fill, reused: which datagram each message belongs to; a fragment's payload slice.
  const owners: number[] = [];
  const slice = new Int32Array(2);
  const cut: FragmentCut = { mtu: 0, index: 0, udpChecksum: 0 };
  let scratch = new Uint8Array(0);

  /**
   * Fill the ring from `ds[i..]`: how many messages, the datagram after the last one taken, and
   * whether a datagram too big for the ring (sent alone, in several calls) hit EAGAIN.
   */
  const fill = (s: FamilySocket, ds: readonly Datagram[], i: number): { m: number; next: number; wait: boolean } => {
    let m = 0;
    let j = i;
    owners.length = 0;
    while (j < ds.length && m < batch) {
      const d = ds[j]!;
      const mtu = mtus.of(d.dst);
      if (udpHeadersLength(s.family) + d.payload.length <= mtu) {
        const h = buildUdpHeaders(ring.headers[m]!, 0, d.src, d.dst, d.payload, fields.of(d));
        // sin6_port must be 0 on IPv6 raw sockets: the kernel reads it as a protocol number.
        ring.setDestination(m, d.dst, 0);
        ring.setHeaderAndPayload(m, h, ring.addressOf(d.payload), d.payload.length);
        owners[m++] = j++;
        continue;
      }
      const count = udpFragmentCount(s.family, d.payload.length, mtu);
      if (m > 0 && m + count > batch) break; // its own sendmmsg next time round
      if (count > batch) {
        // More fragments than ring slots (tiny MTU): this one datagram in several calls, alone.
        if (sendLarge(s, d, fragmentsOf(d, mtu)) === "wait") return { m: 0, next: j, wait: true };
        return { m: 0, next: j + 1, wait: false };
      }
      const f = fields.of(d);
      cut.mtu = mtu;
      cut.udpChecksum = udpChecksumFor(d.src, d.dst, d.payload);
      const at = ring.addressOf(d.payload);
      for (let k = 0; k < count; k++) {
        cut.index = k;
        const h = writeUdpFragment(ring.headers[m]!, 0, d, f, cut, slice);
        ring.setDestination(m, d.dst, 0);
        ring.setHeaderAndPayload(m, h, at + slice[0]!, slice[1]! - slice[0]!);
        owners[m++] = j;
      }
      j++;
    }
    return { m, next: j, wait: false };
  };

  /** Fragments of a datagram as whole packets (header checksum left to the kernel): the tiny-MTU path only. */
  const fragmentsOf = (d: Datagram, mtu: number): Uint8Array[] => {
    const need = udpHeadersLength(d.src.family) + d.payload.length;
    if (scratch.length < need) scratch = new Uint8Array(need);
    const f = fields.of(d);
    const n = buildUdpPacket(scratch, 0, d.src, d.dst, d.payload, f);
    return fragmentPacket(scratch.subarray(0, n), mtu, f.identification, "zero");
  };

  const sendLarge = (s: FamilySocket, d: Datagram, frags: Uint8Array[]): "sent" | "wait" | "dropped" => {
    for (let k = 0; k < frags.length;) {
      const m = Math.min(batch, frags.length - k);
      for (let x = 0; x < m; x++) {
        ring.setDestination(x, d.dst, 0);
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
  };

  /** Count messages [0, to) as sent: their datagrams, and fragments where a datagram took several. */
  const account = (ds: readonly Datagram[], to: number) => {
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
  };

  return (s, ds, from) => {
    let i = from;
    while (i < ds.length) {
      const { m, next, wait } = fill(s, ds, i);
      if (wait) return next;
      if (m === 0) {
        i = next;
        continue;
      }
      const n = ring.send(s.fd, 0, m);
      if (n === m) {
        account(ds, m);
        i = next;
        continue;
      }
      if (n > 0) {
        // Partial: everything before the first unsent message's datagram went out whole.
        const firstUnsent = owners[n]!;
        let whole = 0;
        while (whole < n && owners[whole]! < firstUnsent) whole++;
        account(ds, whole);
        i = firstUnsent;
        continue;
      }
      const e = -n;
      countError(stats, errnoName(e));
      if (e === linux.EAGAIN || e === linux.ENOBUFS) return owners[0]!;
      if (e === linux.EMSGSIZE) {
        c.takeErrors(s.fd);
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
  };
}
