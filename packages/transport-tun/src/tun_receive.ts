/**
 * The TUN backend's receive side: packets the kernel routes into the device, read and parsed into
 * datagrams — fragments reassembled, super-packets (with offloads on) cut into their datagrams,
 * checksums verified where the kernel would — and handed out through an async iterator.
 * @module
 */
import {
  createReassembler,
  type Datagram,
  parseIpv4,
  parseIpv6,
  parseUdp,
  parseVirtioNetHeader,
  socketAddress,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VIRTIO_NET_HDR_LENGTH,
  WireError,
} from "@anysrc/core";
import { libc } from "@anysrc/sys";

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

/** The receive side of one device. */
export interface TunReceiver {
  readonly stats: Readonly<TunReceiveStats>;
  /** True while someone iterates {@link TunReceiver.datagrams}: the device's fd is then watched for reading. */
  readonly wanted: boolean;
  /** Read every packet waiting on the device (it is readable). */
  readPackets(): void;
  /** The datagrams, until `end()`. */
  datagrams(): AsyncIterableIterator<Datagram>;
  /** No more datagrams: a pending `next()` resolves done. */
  end(): void;
}

/**
 * The receive side of the TUN device `fd` (`vnet` bytes of virtio_net_hdr in front of each packet);
 * `onInterest` is told when iteration starts or stops, so the device is watched only while wanted.
 * @example const rx = createTunReceiver(fd, 10, update); for await (const d of rx.datagrams()) …
 */
export function createTunReceiver(fd: number, vnet: number, onInterest: () => void): TunReceiver {
  const stats: TunReceiveStats = { packets: 0, datagrams: 0, ignored: 0, malformed: 0, badChecksum: 0 };
  const readBuffer = new Uint8Array(VIRTIO_NET_HDR_LENGTH + 65536 + 64);
  const reassembler = createReassembler();
  const inbox: Datagram[] = [];
  let wake: (() => void) | undefined;
  let wanted = false;
  let ended = false;

  /** A super-packet (the stack may hand us one with USO on): its UDP payload is gsoSize-byte datagrams, checksum partial (never on a wire). */
  const takeSuperPacket = (n: number) => {
    const d = parseDatagram(readBuffer.subarray(vnet, n), false);
    if (d === "bad-checksum" || !d) return void stats.ignored++;
    const size = parseVirtioNetHeader(readBuffer).gsoSize || d.payload.length || 1;
    for (let at = 0; at < d.payload.length; at += size) {
      stats.datagrams++;
      inbox.push({ src: d.src, dst: d.dst, payload: d.payload.subarray(at, Math.min(at + size, d.payload.length)), tos: d.tos, ttl: d.ttl });
    }
  };

  const takePacket = (n: number) => {
    // With NEEDS_CSUM the UDP checksum is partial (locally sent, never on a wire): not checked.
    const partial = vnet > 0 && (readBuffer[0]! & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
    const whole = reassembler.push(readBuffer.subarray(vnet, n), Date.now());
    if (!whole) return void stats.ignored++;
    const d = parseDatagram(whole, !partial);
    if (d === "bad-checksum") return void stats.badChecksum++;
    if (!d) return void stats.ignored++;
    stats.datagrams++;
    inbox.push(d);
  };

  return {
    stats,
    get wanted() {
      return wanted;
    },
    readPackets() {
      for (;;) {
        const n = libc.read(fd, readBuffer, readBuffer.length);
        if (n <= 0) break;
        stats.packets++;
        try {
          if (vnet > 0 && readBuffer[1] === VIRTIO_NET_HDR_GSO_UDP_L4) takeSuperPacket(n);
          else takePacket(n);
        } catch (e) {
          if (!(e instanceof WireError)) throw e;
          stats.malformed++;
        }
      }
      if (inbox.length > 0) wake?.();
    },
    datagrams() {
      wanted = true;
      onInterest();
      const iterator: AsyncIterableIterator<Datagram> = {
        async next() {
          while (inbox.length === 0 && !ended) await new Promise<void>((resolve) => (wake = resolve));
          const d = inbox.shift();
          return d ? { value: d, done: false } : { value: undefined, done: true };
        },
        return() {
          wanted = false;
          if (!ended) onInterest();
          return Promise.resolve({ value: undefined, done: true });
        },
        [Symbol.asyncIterator]() {
          return iterator;
        },
      };
      return iterator;
    },
    end() {
      ended = true;
      wanted = false;
      wake?.();
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
    const { header: h, payload } = parseIpv4(packet);
    return h.protocol === 17 ? udpDatagram(h.src, h.dst, payload, verify, (h.dscp << 2) | h.ecn, h.ttl) : undefined;
  }
  if (version === 6) {
    const ip = parseIpv6(packet);
    const h = ip.header;
    return ip.upperProtocol === 17 ? udpDatagram(h.src, h.dst, ip.payload, verify, h.trafficClass, h.hopLimit) : undefined;
  }
  return undefined;
}

/** The UDP datagram in an IP payload between `src` and `dst`, or "bad-checksum" (when `verify`). */
function udpDatagram(src: Uint8Array, dst: Uint8Array, l4: Uint8Array, verify: boolean, tos: number, ttl: number): Datagram | "bad-checksum" {
  const udp = parseUdp(l4, src, dst);
  if (verify && udp.checksumValid === false) return "bad-checksum";
  return { src: socketAddress(src, udp.header.srcPort), dst: socketAddress(dst, udp.header.dstPort), payload: udp.payload.slice(), tos, ttl };
}
