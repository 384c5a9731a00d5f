/**
 * The TUN backend: whole IP packets written to a TUN device and routed by the kernel like any
 * forwarded packet (forwarding on, rp_filter off on the device; TTL drops by one). Every checksum is
 * ours, and so is fragmentation above the device MTU. With offloads (IFF_VNET_HDR + TUNSETOFFLOAD),
 * a run of same-size datagrams between one pair of addresses is written as one GSO super-packet that
 * the kernel segments and checksums: one write and one trip through the stack instead of one each.
 * It also receives: packets the kernel routes into the device come back as parsed datagrams
 * (fragments reassembled, super-packets cut), so a TUN can intercept.
 * @module
 */
import {
  ALL_CHECKSUMS,
  buildUdpHeaders,
  countDrop,
  countError,
  createPacketFields,
  createReassembler,
  createSendQueue,
  createTransportStats,
  type Datagram,
  errnoName,
  gsoRunLength,
  parseIpv4,
  parseIpv6,
  parseUdp,
  parseVirtioNetHeader,
  sendOneThrough,
  socketAddress,
  type Transport,
  TransportError,
  type TransportStats,
  UDP_FRAGMENT_HEADER_MAX,
  UDP_GSO_MAX_SEGMENTS,
  udpChecksumFor,
  udpFragmentCount,
  udpHeadersLength,
  validateDatagram,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VIRTIO_NET_HDR_LENGTH,
  WireError,
  writeUdpFragment,
  writeUdpGsoHeaders,
  writeVirtioNetHeader,
} from "@anysrc/core";
import {
  adapter,
  closeFd,
  createDrainWaiter,
  createGatherWrite,
  errno,
  getPoller,
  type Interest,
  libc,
  linux,
  openTun,
  Ready,
  setInterfaceMtu,
  setInterfaceUp,
  setTunOffload,
  writeHeaderAndPayload,
} from "@anysrc/sys";

/** Options of the TUN transport. */
export interface TunTransportOptions {
  /** Device name; created if absent (non-persistent: it disappears when closed). */
  readonly name: string;
  /** Device MTU to set, and the size above which datagrams are fragmented; default 1500. */
  readonly mtu?: number;
  /** Bring the device up; default true. */
  readonly up?: boolean;
  readonly multiQueue?: boolean;
  /** TTL / hop limit written in packets (the kernel decrements it once when forwarding); default 64. */
  readonly ttl?: number;
  /** Datagrams held while the device is not writable; default 4096. */
  readonly queueLimit?: number;
  readonly closeTimeoutMs?: number;
  /**
   * Virtio-net offloads: GSO super-packets out, partial checksums and super-packets in. Default
   * true; used where the kernel accepts them (TUN_F_USO4/6, Linux ≥ 6.2), else plain packets.
   */
  readonly offload?: boolean;
  /**
   * TUN_F_* flags asked of TUNSETOFFLOAD; default TUN_F_CSUM | TUN_F_USO4 | TUN_F_USO6. A kernel that
   * does not know one of them refuses the lot (EINVAL), and the device writes plain packets.
   */
  readonly offloadFlags?: number;
  /** Told once when the kernel refuses offloads and the device goes back to plain packets. */
  readonly onOffloadFallback?: (reason: string) => void;
}

/** Counters of the receive side. */
export interface TunReceiveStats {
  packets: number;
  datagrams: number;
  /** Non-UDP packets (router solicitations, ICMP, …) and fragments still waiting. */
  ignored: number;
  malformed: number;
  /** UDP datagrams dropped for a wrong checksum, as the kernel drops them. */
  badChecksum: number;
}

/** The TUN transport: the contract, plus receiving. */
export interface TunTransport extends Transport {
  readonly kind: "tun";
  readonly name: string;
  readonly mtu: number;
  readonly received: Readonly<TunReceiveStats>;
  /** GSO super-packets are being written (offload asked for and accepted so far). */
  readonly offloading: boolean;
  /** UDP datagrams routed into the device, until the transport closes. */
  receive(): AsyncIterableIterator<Datagram>;
}

/**
 * Create (or attach to) a TUN device and use it as a transport. Needs CAP_NET_ADMIN.
 * @example const t = createTunTransport({ name: "anysrc0", mtu: 1500 }); t.send({ src, dst, payload });
 */
export function createTunTransport(options: TunTransportOptions): TunTransport {
  const mtu = options.mtu ?? 1500;
  const device = openTun(options.name, { multiQueue: options.multiQueue === true, vnetHeader: options.offload !== false });
  const stats: TransportStats = createTransportStats();
  let gso = false;
  let told = false;
  /** Offloads refused: plain packets from now on (still behind a zero virtio_net_hdr), counted, told once. */
  const fallBack = (reason: string) => {
    gso = false;
    stats.offloadFallbacks++;
    if (told) return;
    told = true;
    options.onOffloadFallback?.(`tun ${device.name}: ${reason}; writing plain packets`);
  };
  try {
    if (device.vnetHeader) {
      const e = setTunOffload(device.fd, options.offloadFlags ?? linux.TUN_F_CSUM | linux.TUN_F_USO4 | linux.TUN_F_USO6);
      if (e === 0) gso = true;
      else fallBack(`TUNSETOFFLOAD with UDP segmentation refused (${errnoName(e)}; needs Linux 6.2)`);
    }
    setInterfaceMtu(device.name, mtu);
    if (options.up !== false) setInterfaceUp(device.name);
  } catch (e) {
    closeFd(device.fd);
    throw e;
  }
  const fd = device.fd;
  const vnet = device.vnetHeader ? VIRTIO_NET_HDR_LENGTH : 0;
  const received: TunReceiveStats = { packets: 0, datagrams: 0, ignored: 0, malformed: 0, badChecksum: 0 };
  const queue = createSendQueue(options.queueLimit ?? 4096);
  // IPv4 packets leave with DF clear, each with an ID unique per destination (see the raw transport).
  const fields = createPacketFields(options.ttl ?? 64, ALL_CHECKSUMS);
  const poller = getPoller();
  // One packet's headers at a time (its payload is written from where it lies), over an ArrayBuffer
  // of its own (oven-sh/bun#32055).
  const header = new Uint8Array(new ArrayBuffer(VIRTIO_NET_HDR_LENGTH + UDP_FRAGMENT_HEADER_MAX));
  // A super-packet's pieces: its headers, then each datagram's payload where it lies.
  const gather = createGatherWrite(1 + UDP_GSO_MAX_SEGMENTS);
  const slice = new Int32Array(2);
  let closed = false;
  const drain = createDrainWaiter();

  // Receive side state.
  const readBuffer = new Uint8Array(VIRTIO_NET_HDR_LENGTH + 65536 + 64);
  const reassembler = createReassembler();
  const inbox: Datagram[] = [];
  let wake: (() => void) | undefined;
  let receiving = false;

  let registered = false;
  const interest = (): Interest => ({ readable: receiving, writable: queue.length > 0 });
  const updateRegistration = () => {
    const want = interest();
    if (!want.readable && !want.writable) {
      if (registered) poller.remove(fd);
      registered = false;
    } else if (!registered) {
      poller.add(fd, want, onReady);
      registered = true;
    } else poller.modify(fd, want);
  };

  /**
   * Set once writes fail with EBADFD/ENODEV: the device was deleted underneath us, and a TUN fd never
   * reattaches. From then on every datagram offered is counted as dropped "device-gone".
   */
  let gone: TransportError | undefined;
  let goneErrno = 0;
  const deviceGone = (e: number) => {
    gone = new TransportError("device-gone", `TUN device ${device.name} is gone (${errnoName(e)}: it was deleted while in use); the tun transport has stopped`);
    const left = queue.clear();
    if (left > 0) countDrop(stats, "device-gone", left);
    stats.queued = 0;
    if (registered) poller.remove(fd);
    registered = false;
    drain.drained();
  };

  /**
   * Write each packet of `d` — its headers from `header`, its payload (or fragment's slice) from
   * where it lies, one writev per packet: "wait" when the device said EAGAIN, "gone" when it
   * disappeared (nothing of `d` counted in either case), else "done" (sent, or dropped and counted).
   */
  const writeDatagram = (d: Datagram): "done" | "wait" | "gone" => {
    const count = udpFragmentCount(d.src.family, d.payload.length, mtu);
    const at = adapter.addressOf(d.payload);
    const f = fields.of(d);
    const sum = count > 1 ? udpChecksumFor(d.src, d.dst, d.payload) : 0;
    // A finished packet: an all-zero virtio_net_hdr in front (a super-packet may have left one there).
    if (vnet > 0 && header[1] !== 0) writeVirtioNetHeader(header, 0, 0, 0, 0, 0, 0, 0);
    for (let k = 0; k < count; k++) {
      let h: number;
      if (count === 1) {
        h = buildUdpHeaders(header, vnet, d.src, d.dst, d.payload, f);
        slice[0] = 0;
        slice[1] = d.payload.length;
      } else h = writeUdpFragment(header, vnet, d.src, d.dst, d.payload, f, mtu, k, f.identification, sum, slice);
      const w = writeHeaderAndPayload(fd, header, vnet + h, at + slice[0]!, slice[1]! - slice[0]!);
      if (w >= 0) {
        stats.batches++;
        continue;
      }
      const e = errno();
      countError(stats, errnoName(e));
      if ((e === linux.EAGAIN || e === linux.ENOBUFS) && k === 0) return "wait";
      if (e === linux.EBADFD || e === linux.ENODEV) {
        goneErrno = e;
        return "gone";
      }
      // Mid-datagram or a hard error: the datagram is lost; say so.
      countDrop(stats, "send-error");
      return "done";
    }
    stats.sent++;
    stats.bytes += d.payload.length;
    if (count > 1) stats.fragments += count;
    return "done";
  };

  /**
   * `ds[i, i + n)` (a {@link gsoRunLength} run) as one super-packet: "refused" when the kernel will
   * not take it (offloads then off for good; nothing of it was sent), else as {@link writeDatagram}.
   */
  const writeSuperPacket = (ds: readonly Datagram[], i: number, n: number): "done" | "wait" | "gone" | "refused" => {
    const d = ds[i]!;
    let total = 0;
    for (let k = 0; k < n; k++) {
      const p = ds[i + k]!.payload;
      gather.set(k + 1, adapter.addressOf(p), p.length);
      total += p.length;
    }
    const h = writeUdpGsoHeaders(header, 0, d.src, d.dst, d.payload.length, total, fields.of(d, n));
    gather.set(0, adapter.addressOf(header), h);
    if (gather.write(fd, n + 1) >= 0) {
      stats.batches++;
      stats.sent += n;
      stats.coalesced += n;
      stats.bytes += total;
      return "done";
    }
    const e = errno();
    countError(stats, errnoName(e));
    if (e === linux.EAGAIN || e === linux.ENOBUFS) return "wait";
    if (e === linux.EBADFD || e === linux.ENODEV) {
      goneErrno = e;
      return "gone";
    }
    fallBack(`a GSO super-packet was refused (${errnoName(e)})`);
    return "refused";
  };

  const WAIT = -1;
  const GONE = -2;
  /** Write what comes first in `ds[i, to)`: how many datagrams it consumed, or WAIT / GONE. */
  const writeNext = (ds: readonly Datagram[], i: number, to: number): number => {
    if (gso) {
      const n = gsoRunLength(ds, i, to, mtu - udpHeadersLength(ds[i]!.src.family));
      if (n > 1) {
        const r = writeSuperPacket(ds, i, n);
        if (r === "done") return n;
        if (r === "wait") return WAIT;
        if (r === "gone") return GONE;
      }
    }
    const r = writeDatagram(ds[i]!);
    return r === "done" ? 1 : r === "wait" ? WAIT : GONE;
  };

  const flushQueue = () => {
    while (queue.length > 0) {
      const chunk = queue.head(UDP_GSO_MAX_SEGMENTS);
      let i = 0;
      while (i < chunk.length) {
        const k = writeNext(chunk, i, chunk.length);
        if (k === GONE) return deviceGone(goneErrno); // counts the queue, these datagrams included
        if (k === WAIT) break;
        i += k;
      }
      queue.drop(i);
      if (i < chunk.length) break;
    }
    stats.queued = queue.length;
    if (queue.length === 0) drain.drained();
  };

  const readPackets = () => {
    for (;;) {
      const n = libc.read(fd, readBuffer, readBuffer.length);
      if (n <= 0) break;
      received.packets++;
      try {
        if (vnet > 0 && readBuffer[1] === VIRTIO_NET_HDR_GSO_UDP_L4) {
          // A super-packet (the stack may hand us one with USO on): its UDP payload is gsoSize-byte datagrams.
          // Its checksum is partial (NEEDS_CSUM: sent on this host, never on a wire): not checked.
          const d = parseDatagram(readBuffer.subarray(vnet, n), false);
          if (d === "bad-checksum" || !d) {
            received.ignored++;
            continue;
          }
          const size = parseVirtioNetHeader(readBuffer).gsoSize || d.payload.length || 1;
          for (let at = 0; at < d.payload.length; at += size) {
            received.datagrams++;
            inbox.push({ src: d.src, dst: d.dst, payload: d.payload.subarray(at, Math.min(at + size, d.payload.length)), tos: d.tos, ttl: d.ttl });
          }
          continue;
        }
        // With NEEDS_CSUM the UDP checksum is partial (locally sent, never on a wire): not checked.
        const partial = vnet > 0 && (readBuffer[0]! & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
        const whole = reassembler.push(readBuffer.subarray(vnet, n), Date.now());
        if (!whole) {
          received.ignored++;
          continue;
        }
        const d = parseDatagram(whole, !partial);
        if (d === "bad-checksum") {
          received.badChecksum++;
          continue;
        }
        if (!d) {
          received.ignored++;
          continue;
        }
        received.datagrams++;
        inbox.push(d);
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
        received.malformed++;
      }
    }
    if (inbox.length > 0) wake?.();
  };

  function onReady(events: number): void {
    if (gone) return;
    if (events & Ready.writable) flushQueue();
    if (gone) return;
    if (events & Ready.readable) readPackets();
    // Interest may have changed (queue emptied): tell the poller (a no-op when it did not).
    const want = interest();
    if (!want.readable && !want.writable) {
      poller.remove(fd);
      registered = false;
    } else poller.modify(fd, want);
  }

  const sendBatch = (ds: readonly Datagram[]) => {
    if (closed) throw new TransportError("closed", `tun transport ${device.name} is closed`);
    for (const d of ds) validateDatagram(d);
    if (gone) {
      countDrop(stats, "device-gone", ds.length);
      throw gone;
    }
    let i = 0;
    if (queue.length === 0) {
      while (i < ds.length) {
        const k = writeNext(ds, i, ds.length);
        if (k === WAIT) break;
        if (k === GONE) {
          deviceGone(goneErrno);
          countDrop(stats, "device-gone", ds.length - i);
          throw gone;
        }
        i += k;
      }
    }
    for (; i < ds.length; i++) if (!queue.push(ds[i]!)) countDrop(stats, "queue-full");
    stats.queued = queue.length;
    if (queue.length > 0) updateRegistration();
  };

  return {
    kind: "tun",
    name: device.name,
    mtu,
    get offloading() {
      return gso;
    },
    stats,
    received,
    send: sendOneThrough(sendBatch),
    sendBatch,
    receive() {
      receiving = true;
      updateRegistration();
      const iterator: AsyncIterableIterator<Datagram> = {
        async next() {
          while (inbox.length === 0 && !closed) await new Promise<void>((resolve) => (wake = resolve));
          const d = inbox.shift();
          return d ? { value: d, done: false } : { value: undefined, done: true };
        },
        return() {
          receiving = false;
          if (!closed) updateRegistration();
          return Promise.resolve({ value: undefined, done: true });
        },
        [Symbol.asyncIterator]() {
          return iterator;
        },
      };
      return iterator;
    },
    async close() {
      if (closed) return;
      await drain.wait(queue.length > 0, options.closeTimeoutMs ?? 2000);
      closed = true;
      if (gone) {
        closeFd(fd);
        return;
      }
      const left = queue.clear();
      if (left > 0) countDrop(stats, "closed", left);
      stats.queued = 0;
      if (registered) poller.remove(fd);
      registered = false;
      wake?.();
      closeFd(fd);
    },
  };
}

/**
 * The UDP datagram in a whole IP packet (its TOS and TTL kept), undefined for anything else, or
 * "bad-checksum" when `verify` and its UDP checksum is wrong — what the kernel would drop.
 */
function parseDatagram(packet: Uint8Array, verify: boolean): Datagram | undefined | "bad-checksum" {
  const version = packet[0]! >>> 4;
  if (version === 4) {
    const ip = parseIpv4(packet);
    if (ip.header.protocol !== 17) return undefined;
    const udp = parseUdp(ip.payload, ip.header.src, ip.header.dst);
    if (verify && udp.checksumValid === false) return "bad-checksum";
    return {
      src: socketAddress(ip.header.src, udp.header.srcPort),
      dst: socketAddress(ip.header.dst, udp.header.dstPort),
      payload: udp.payload.slice(),
      tos: (ip.header.dscp << 2) | ip.header.ecn,
      ttl: ip.header.ttl,
    };
  }
  if (version === 6) {
    const ip = parseIpv6(packet);
    if (ip.upperProtocol !== 17) return undefined;
    const udp = parseUdp(ip.payload, ip.header.src, ip.header.dst);
    if (verify && udp.checksumValid === false) return "bad-checksum";
    return {
      src: socketAddress(ip.header.src, udp.header.srcPort),
      dst: socketAddress(ip.header.dst, udp.header.dstPort),
      payload: udp.payload.slice(),
      tos: ip.header.trafficClass,
      ttl: ip.header.hopLimit,
    };
  }
  return undefined;
}
