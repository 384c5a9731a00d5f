/**
 * A UDP datagram too big for the MTU, fragmented without copying its payload: each fragment is a
 * header written into a caller's buffer (the IP header, the IPv6 Fragment header, and on the first
 * fragment the UDP header) followed by a slice of the payload where it lies — two iovecs for
 * sendmmsg or writev. The bytes on the wire are those of {@link fragmentPacket} applied to the whole
 * packet; no fragment is ever materialised.
 * @module
 */
import type { SocketAddress } from "./address.ts";
import { finishChecksum, sumBytes } from "./checksum.ts";
import { IPV4_HEADER_LENGTH, writeIpv4Header } from "./ipv4.ts";
import { IPV6_FRAGMENT_HEADER_LENGTH, IPV6_HEADER_LENGTH, NextHeader, writeIpv6Header } from "./ipv6.ts";
import type { UdpPacketOptions } from "./packet.ts";
import { IPPROTO_UDP, UDP_HEADER_LENGTH, writeUdpHeader } from "./udp.ts";

/** Bytes of UDP datagram (header included) each fragment carries: a multiple of 8 (RFC 791, RFC 8200). */
function fragmentRoom(family: 4 | 6, mtu: number): number {
  const headers = family === 4 ? IPV4_HEADER_LENGTH : IPV6_HEADER_LENGTH + IPV6_FRAGMENT_HEADER_LENGTH;
  return Math.floor((mtu - headers) / 8) * 8;
}

/**
 * How many fragments a UDP datagram with `payloadLength` bytes of payload needs at `mtu`: 1 when
 * its packet fits.
 * @example udpFragmentCount(4, 3000, 1500) // 3
 */
export function udpFragmentCount(family: 4 | 6, payloadLength: number, mtu: number): number {
  const datagram = UDP_HEADER_LENGTH + payloadLength;
  const headers = family === 4 ? IPV4_HEADER_LENGTH : IPV6_HEADER_LENGTH;
  if (headers + datagram <= mtu) return 1;
  return Math.ceil(datagram / fragmentRoom(family, mtu));
}

/** Bytes of header the largest fragment header takes (IPv6 + Fragment + UDP): size header slots by it. */
export const UDP_FRAGMENT_HEADER_MAX = IPV6_HEADER_LENGTH + IPV6_FRAGMENT_HEADER_LENGTH + UDP_HEADER_LENGTH;

/**
/** Which fragment of a datagram to write; one record per transport, its `index` set fragment by fragment. */
export interface FragmentCut {
  /** The MTU the datagram is cut at. */
  mtu: number;
  /** 0-based, below {@link udpFragmentCount}. */
  index: number;
  /** The datagram's UDP checksum (`udpChecksumFor` in packet.ts): fragment 0 carries the UDP header. */
  udpChecksum: number;
}

/**
 * Write the headers of fragment `cut.index` of the UDP datagram `d` at `out[offset]`, with IPv4
 * identification / IPv6 fragment ID `options.identification` (the same for every fragment of the
 * datagram). Returns the header length; the payload slice the fragment carries is
 * `d.payload[slice[0], slice[1])`.
 * @example const h = writeUdpFragment(slot, 0, d, options, { mtu: 1500, index: 1, udpChecksum: sum }, slice);
 */
export function writeUdpFragment(
  out: Uint8Array,
  offset: number,
  d: { readonly src: SocketAddress; readonly dst: SocketAddress; readonly payload: Uint8Array },
  options: UdpPacketOptions,
  cut: FragmentCut,
  slice: Int32Array,
): number {
  const { src, dst, payload } = d;
  const { mtu, index } = cut;
  const identification = options.identification ?? 0;
  const family = src.family;
  const room = fragmentRoom(family, mtu);
  const datagram = UDP_HEADER_LENGTH + payload.length;
  const from = index * room; // in datagram bytes; the UDP header is datagram bytes 0–7
  const to = Math.min(datagram, from + room);
  const more = to < datagram;
  const ttl = options.ttl ?? 64;
  const tos = options.tos ?? 0;
  let h: number;
  if (family === 4) {
    writeIpv4Header(
      out,
      offset,
      IPV4_HEADER_LENGTH,
      tos,
      IPV4_HEADER_LENGTH + to - from,
      identification,
      (more ? 0x2000 : 0) | (from >>> 3),
      ttl,
      IPPROTO_UDP,
      src.ip,
      dst.ip,
    );
    if (options.checksums.ipv4Header === "compute") {
      const c = finishChecksum(sumBytes(out, offset, offset + IPV4_HEADER_LENGTH));
      out[offset + 10] = c >>> 8;
      out[offset + 11] = c & 0xff;
    }
    h = IPV4_HEADER_LENGTH;
  } else {
    writeIpv6Header(out, offset, tos, options.flowLabel ?? 0, IPV6_FRAGMENT_HEADER_LENGTH + to - from, NextHeader.Fragment, ttl, src.ip, dst.ip);
    const f = offset + IPV6_HEADER_LENGTH;
    const field = from | (more ? 1 : 0); // offset in 8-byte units, shifted left 3, then the M flag
    out[f] = IPPROTO_UDP;
    out[f + 1] = 0;
    out[f + 2] = field >>> 8;
    out[f + 3] = field & 0xff;
    out[f + 4] = (identification >>> 24) & 0xff;
    out[f + 5] = (identification >>> 16) & 0xff;
    out[f + 6] = (identification >>> 8) & 0xff;
    out[f + 7] = identification & 0xff;
    h = IPV6_HEADER_LENGTH + IPV6_FRAGMENT_HEADER_LENGTH;
  }
  if (index === 0) {
    writeUdpHeader(out, offset + h, src.port, dst.port, datagram, cut.udpChecksum);
    h += UDP_HEADER_LENGTH;
    slice[0] = 0;
  } else slice[0] = from - UDP_HEADER_LENGTH;
  slice[1] = to - UDP_HEADER_LENGTH;
  return h;
}
