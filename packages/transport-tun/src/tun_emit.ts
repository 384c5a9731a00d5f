/**
 * How the TUN backend puts datagrams on the wire: each packet one writev of its headers (from a
 * small buffer of our own) and its payload where it lies; a datagram over the device MTU as its
 * fragments; with offloads, a run of same-size datagrams between one pair of addresses as one GSO
 * super-packet behind a virtio_net_hdr, which the kernel segments and checksums.
 * @module
 */
import {
  buildUdpHeaders,
  countDrop,
  countError,
  type Datagram,
  errnoName,
  type FragmentCut,
  gsoRunLength,
  type PacketFields,
  type TransportStats,
  UDP_FRAGMENT_HEADER_MAX,
  UDP_GSO_MAX_SEGMENTS,
  udpChecksumFor,
  udpFragmentCount,
  udpHeadersLength,
  VIRTIO_NET_HDR_LENGTH,
  writeUdpFragment,
  writeUdpGsoHeaders,
  writeVirtioNetHeader,
} from "@anysrc/core";
import { adapter, createGatherWrite, errno, linux, writeHeaderAndPayload } from "@anysrc/sys";

/** The device as the engine sees it. */
export interface TunLane {
  readonly fd: number;
}

/** What the emit step works with. */
export interface TunEmitContext {
  readonly mtu: number;
  /** Bytes of virtio_net_hdr in front of every packet (0 without IFF_VNET_HDR). */
  readonly vnet: number;
  readonly fields: PacketFields;
  readonly stats: TransportStats;
  /** True while super-packets are accepted. */
  readonly offloading: () => boolean;
  /** The kernel refused a super-packet: offloads off for good (nothing of it was sent). */
  readonly refused: (reason: string) => void;
  /** The device vanished (EBADFD / ENODEV): stop the transport; the datagram was not sent. */
  readonly gone: (errno: number) => void;
}

const DONE = 0;
const WAIT = 1;
const GONE = 2;
const REFUSED = 3;
type Outcome = typeof DONE | typeof WAIT | typeof GONE | typeof REFUSED;

/** The emit step's context and the buffers it reuses. */
interface TunEmitState {
  readonly c: TunEmitContext;
  /** One packet's headers at a time, over an ArrayBuffer of its own (oven-sh/bun#32055). */
  readonly header: Uint8Array;
  /** A super-packet's pieces: its headers, then each datagram's payload where it lies. */
  readonly gather: ReturnType<typeof createGatherWrite>;
  /** A fragment's payload slice [start, end). */
  readonly slice: Int32Array;
  readonly cut: FragmentCut;
}

/**
 * The TUN backend's emit step for the transport engine.
 * @example const emit = createTunEmit(context); emit(device, datagrams, 0) // index of the first not written
 */
export function createTunEmit(c: TunEmitContext): (lane: TunLane, ds: readonly Datagram[], from: number) => number {
  const st: TunEmitState = {
    c,
    header: new Uint8Array(new ArrayBuffer(VIRTIO_NET_HDR_LENGTH + UDP_FRAGMENT_HEADER_MAX)),
    gather: createGatherWrite(1 + UDP_GSO_MAX_SEGMENTS),
    slice: new Int32Array(2),
    cut: { mtu: c.mtu, index: 0, udpChecksum: 0 },
  };
  return (lane, ds, from) => emit(st, lane, ds, from);
}

/** Write ds[from..] to the device; returns the index of the first datagram not written (ds.length: all). */
function emit(st: TunEmitState, lane: TunLane, ds: readonly Datagram[], from: number): number {
  const c = st.c;
  let i = from;
  while (i < ds.length) {
    if (c.offloading()) {
      const n = gsoRunLength(ds, i, ds.length, c.mtu - udpHeadersLength(ds[i]!.src.family));
      if (n > 1) {
        const r = writeSuperPacket(st, lane.fd, ds, i, n);
        if (r === DONE) {
          i += n;
          continue;
        }
        if (r !== REFUSED) return i; // REFUSED: the same datagrams again, plainly
      }
    }
    if (writeDatagram(st, lane.fd, ds[i]!) !== DONE) return i;
    i++;
  }
  return ds.length;
}

/** What a failed write means: wait (EAGAIN on the first packet), the device gone, or else `otherwise`. */
function failure(st: TunEmitState, first: boolean, otherwise: Outcome): Outcome {
  const c = st.c;
  const e = errno();
  countError(c.stats, errnoName(e));
  if ((e === linux.EAGAIN || e === linux.ENOBUFS) && first) return WAIT;
  if (e === linux.EBADFD || e === linux.ENODEV) {
    c.gone(e);
    return GONE;
  }
  if (otherwise === REFUSED) c.refused(`a GSO super-packet was refused (${errnoName(e)})`);
  return otherwise;
}

/** Each packet of `d`; a hard error mid-datagram loses it (counted). */
function writeDatagram(st: TunEmitState, fd: number, d: Datagram): Outcome {
  const { mtu, vnet, fields, stats } = st.c;
  const { header, slice, cut } = st;
  const count = udpFragmentCount(d.src.family, d.payload.length, mtu);
  const at = adapter.addressOf(d.payload);
  const f = fields.of(d);
  cut.udpChecksum = count > 1 ? udpChecksumFor(d.src, d.dst, d.payload) : 0;
  // A finished packet: an all-zero virtio_net_hdr in front (a super-packet may have left one there).
  if (vnet > 0 && header[1] !== 0) writeVirtioNetHeader(header, 0, 0, 0, 0, 0, 0, 0);
  for (let k = 0; k < count; k++) {
    let h: number;
    if (count === 1) {
      h = buildUdpHeaders(header, vnet, d.src, d.dst, d.payload, f);
      slice[0] = 0;
      slice[1] = d.payload.length;
    } else {
      cut.index = k;
      h = writeUdpFragment(header, vnet, d, f, cut, slice);
    }
    if (writeHeaderAndPayload(fd, header, vnet + h, at + slice[0]!, slice[1]! - slice[0]!) >= 0) {
      stats.batches++;
      continue;
    }
    const r = failure(st, k === 0, DONE);
    if (r === DONE) countDrop(stats, "send-error");
    return r;
  }
  stats.sent++;
  stats.bytes += d.payload.length;
  if (count > 1) stats.fragments += count;
  return DONE;
}

/** `ds[i, i + n)`, a {@link gsoRunLength} run, as one super-packet. */
function writeSuperPacket(st: TunEmitState, fd: number, ds: readonly Datagram[], i: number, n: number): Outcome {
  const { fields, stats } = st.c;
  const { header, gather } = st;
  const d = ds[i]!;
  let total = 0;
  for (let k = 0; k < n; k++) {
    const p = ds[i + k]!.payload;
    gather.set(k + 1, adapter.addressOf(p), p.length);
    total += p.length;
  }
  const h = writeUdpGsoHeaders(header, 0, d.src, d.dst, d.payload.length, total, fields.of(d, n));
  gather.set(0, adapter.addressOf(header), h);
  if (gather.write(fd, n + 1) < 0) return failure(st, true, REFUSED);
  stats.batches++;
  stats.sent += n;
  stats.coalesced += n;
  stats.bytes += total;
  return DONE;
}
