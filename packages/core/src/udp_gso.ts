/**
 * UDP segmentation offload (GSO) on the wire: which consecutive datagrams may leave as one send,
 * and the virtio_net_hdr + IP + UDP headers of a super-packet written to a TUN device, whose segments
 * the kernel cuts, numbers and checksums. Pure wire format; the sockets and devices are in @anysrc/sys.
 * @module
 */
import type { SocketAddress } from "./address.ts";
import { sameSocketAddress } from "./address.ts";
import { finishChecksum, foldChecksum, pseudoHeaderSum, sumBytes } from "./checksum.ts";
import { WireError } from "./errors.ts";
import { IPV4_HEADER_LENGTH, writeIpv4Header } from "./ipv4.ts";
import { IPV6_HEADER_LENGTH, writeIpv6Header } from "./ipv6.ts";
import { type IpFields, maxUdpPayload } from "./packet.ts";
import type { Datagram } from "./transport.ts";
import { IPPROTO_UDP, UDP_HEADER_LENGTH, writeUdpHeader } from "./udp.ts";

/** Most segments one GSO send carries: the kernel's UDP_MAX_SEGMENTS before Linux 6.9 (128 since). */
export const UDP_GSO_MAX_SEGMENTS = 64;
/** Bytes of a struct virtio_net_hdr (the TUN IFF_VNET_HDR prefix, without num_buffers). */
export const VIRTIO_NET_HDR_LENGTH = 10;
/** virtio_net_hdr flag: the checksum at csum_start + csum_offset is the pseudo-header sum only. */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** virtio_net_hdr gso_type values. */
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;

/**
 * How many datagrams from `ds[from]` on (below `to`) may leave as one GSO send: the same source and
 * destination, the same TOS and TTL, the first one's size (its segment size, ≤ `maxSegment`), at most one shorter one and
 * only last, never an empty one (a zero-length segment would vanish inside the super-packet), at
 * most {@link UDP_GSO_MAX_SEGMENTS} and the family's largest UDP payload in all. 1 means "send it alone".
 * @example gsoRunLength(replies, 0, replies.length, 1472) // 32 for 32 replies of 1200 B from one server
 */
export function gsoRunLength(ds: readonly Datagram[], from: number, to: number, maxSegment: number): number {
  const first = ds[from]!;
  const size = first.payload.length;
  if (size === 0 || size > maxSegment) return 1;
  const limit = maxUdpPayload(first.src.family);
  let total = size;
  let n = 1;
  while (from + n < to && n < UDP_GSO_MAX_SEGMENTS) {
    const d = ds[from + n]!;
    const length = d.payload.length;
    if (length === 0 || length > size || total + length > limit) break;
    // Records are mostly shared (a remote's, a session's): identity settles most comparisons.
    if ((d.src !== first.src && !sameSocketAddress(d.src, first.src)) || (d.dst !== first.dst && !sameSocketAddress(d.dst, first.dst))) break;
    // Every segment leaves with the one header's class and TTL.
    if ((d.tos ?? 0) !== (first.tos ?? 0) || d.ttl !== first.ttl) break;
    n++;
    total += length;
    if (length < size) break;
  }
  return n;
}

/**
 * Write, at `out[offset]`, the headers of a TUN super-packet carrying `payloadLength` bytes of UDP
 * payload src → dst in segments of `segmentSize`: a virtio_net_hdr asking for GSO_UDP_L4 and a
 * partial checksum, then IP and UDP headers sized for the whole (the kernel rewrites lengths, IDs and
 * checksums per segment). The UDP checksum field holds the pseudo-header sum, as the kernel expects
 * of CHECKSUM_PARTIAL. Returns the header length (10 + 28 or 10 + 48); the payloads follow.
 * `fields.identification` is the first segment's IPv4 ID; the kernel numbers the others on from it.
 * @example const h = writeUdpGsoHeaders(hdr, 0, server, client, 1200, 32 * 1200, { ttl: 64, tos: 0, identification: 1 });
 * @throws {WireError} the whole exceeds the family's UDP maximum.
 */
export function writeUdpGsoHeaders(
  out: Uint8Array,
  offset: number,
  src: SocketAddress,
  dst: SocketAddress,
  segmentSize: number,
  payloadLength: number,
  fields: IpFields,
): number {
  const { ttl, tos, identification } = fields;
  if (payloadLength > maxUdpPayload(src.family)) {
    throw new WireError("too-big", `GSO payload of ${payloadLength} bytes exceeds the IPv${src.family} maximum ${maxUdpPayload(src.family)}`);
  }
  const ipLength = src.family === 4 ? IPV4_HEADER_LENGTH : IPV6_HEADER_LENGTH;
  const ip = offset + VIRTIO_NET_HDR_LENGTH;
  const udpLength = UDP_HEADER_LENGTH + payloadLength;
  writeVirtioNetHeader(out, offset, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_UDP_L4, ipLength + UDP_HEADER_LENGTH, segmentSize, ipLength, 6);
  if (src.family === 4) {
    writeIpv4Header(out, ip, IPV4_HEADER_LENGTH, tos, IPV4_HEADER_LENGTH + udpLength, identification, 0, ttl, IPPROTO_UDP, src.ip, dst.ip);
    // The kernel checks the super-packet's header checksum on the way in (ip_rcv), before it segments.
    const c = finishChecksum(sumBytes(out, ip, ip + IPV4_HEADER_LENGTH));
    out[ip + 10] = c >>> 8;
    out[ip + 11] = c & 0xff;
  } else writeIpv6Header(out, ip, tos, 0, udpLength, IPPROTO_UDP, ttl, src.ip, dst.ip);
  writeUdpHeader(out, ip + ipLength, src.port, dst.port, udpLength, foldChecksum(pseudoHeaderSum(src.ip, dst.ip, IPPROTO_UDP, udpLength)));
  return VIRTIO_NET_HDR_LENGTH + ipLength + UDP_HEADER_LENGTH;
}

/**
 * Write a struct virtio_net_hdr (little-endian, as a TUN device without TUNSETVNETBE reads it).
 * All zero: a finished packet, nothing for the kernel to do.
 * @example writeVirtioNetHeader(out, 0, 0, VIRTIO_NET_HDR_GSO_NONE, 0, 0, 0, 0)
 */
export function writeVirtioNetHeader(
  out: Uint8Array,
  o: number,
  flags: number,
  gsoType: number,
  headerLength: number,
  gsoSize: number,
  checksumStart: number,
  checksumOffset: number,
): void {
  out[o] = flags;
  out[o + 1] = gsoType;
  out[o + 2] = headerLength & 0xff;
  out[o + 3] = headerLength >>> 8;
  out[o + 4] = gsoSize & 0xff;
  out[o + 5] = gsoSize >>> 8;
  out[o + 6] = checksumStart & 0xff;
  out[o + 7] = checksumStart >>> 8;
  out[o + 8] = checksumOffset & 0xff;
  out[o + 9] = checksumOffset >>> 8;
}

/** A struct virtio_net_hdr as read from a TUN device. */
export interface VirtioNetHeader {
  readonly flags: number;
  readonly gsoType: number;
  readonly headerLength: number;
  readonly gsoSize: number;
  readonly checksumStart: number;
  readonly checksumOffset: number;
}

/**
 * Parse the virtio_net_hdr at the start of a TUN read.
 * @example parseVirtioNetHeader(read).gsoType === VIRTIO_NET_HDR_GSO_UDP_L4
 * @throws {WireError} fewer than 10 bytes.
 */
export function parseVirtioNetHeader(bytes: Uint8Array): VirtioNetHeader {
  if (bytes.length < VIRTIO_NET_HDR_LENGTH) throw new WireError("truncated", `virtio_net_hdr needs ${VIRTIO_NET_HDR_LENGTH} bytes, got ${bytes.length}`);
  const u16 = (o: number) => bytes[o]! | (bytes[o + 1]! << 8);
  return { flags: bytes[0]!, gsoType: bytes[1]!, headerLength: u16(2), gsoSize: u16(4), checksumStart: u16(6), checksumOffset: u16(8) };
}
