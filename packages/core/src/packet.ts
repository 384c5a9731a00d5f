/**
 * Whole IPv4/IPv6 + UDP packets written into a caller's buffer: the per-datagram path of the raw and
 * tun transports. No allocation, no records: positional header writers and one checksum pass.
 * @module
 */
import type { SocketAddress } from "./address.ts";
import { finishChecksum, pseudoHeaderSum, sumBytes } from "./checksum.ts";
import { AddressError, WireError } from "./errors.ts";
import { type ChecksumMode, IPV4_HEADER_LENGTH, writeIpv4Header } from "./ipv4.ts";
import { IPV6_HEADER_LENGTH, writeIpv6Header } from "./ipv6.ts";
import { IPPROTO_UDP, UDP_HEADER_LENGTH, writeUdpHeader } from "./udp.ts";

/** Which checksums a packet path fills. Nobody fills UDP's for you; only a raw IPv4 socket fills the header's. */
export interface ChecksumPolicy {
  /** IPv4 header checksum. The kernel fills it on raw IP_HDRINCL sockets; a TUN device fills nothing. */
  readonly ipv4Header: ChecksumMode;
  /** UDP checksum (mandatory on IPv6; "zero" is refused there). */
  readonly udp: ChecksumMode;
}

/** Raw IPPROTO_RAW socket: the kernel writes the IPv4 header checksum (and total length), we write UDP's. */
export const RAW_SOCKET_CHECKSUMS: ChecksumPolicy = { ipv4Header: "zero", udp: "compute" };
/** TUN device or a pcap: every checksum is ours. */
export const ALL_CHECKSUMS: ChecksumPolicy = { ipv4Header: "compute", udp: "compute" };

/** Header fields of the IP layer a sender may choose; everything else follows from the addresses. */
export interface UdpPacketOptions {
  /** TTL / hop limit; default 64. */
  readonly ttl?: number;
  /** IPv4 TOS byte (DSCP + ECN) / IPv6 traffic class; default 0. */
  readonly tos?: number;
  /** IPv4 identification; default 0 (a raw socket then lets the kernel pick one). */
  readonly identification?: number;
  /** IPv4 Don't Fragment flag; default false. */
  readonly dontFragment?: boolean;
  /** IPv6 flow label; default 0. */
  readonly flowLabel?: number;
  readonly checksums: ChecksumPolicy;
}

/** The per-packet IP fields a sender sets: TTL / hop limit, TOS / traffic class, IPv4 identification. */
export interface IpFields {
  readonly ttl: number;
  readonly tos: number;
  readonly identification: number;
}

/** Largest UDP payload per family: 65535 − 20 − 8 for IPv4, 65535 − 8 for IPv6 (payload length field). */
export function maxUdpPayload(family: 4 | 6): number {
  return family === 4 ? 65507 : 65527;
}

/** Bytes of IP + UDP header before the payload: 28 (IPv4) or 48 (IPv6). */
export function udpHeadersLength(family: 4 | 6): number {
  return (family === 4 ? IPV4_HEADER_LENGTH : IPV6_HEADER_LENGTH) + UDP_HEADER_LENGTH;
}

/**
 * Write the IP and UDP headers for `payload` at `out[offset]`, the UDP checksum computed over the
 * payload where it lies, so a sender can hand header and payload to the kernel as two iovecs without
 * copying. Returns the header length (28 or 48).
 * @example const h = buildUdpHeaders(hdr, 0, src, dst, payload, { checksums: RAW_SOCKET_CHECKSUMS });
 * @throws {AddressError} families differ. {@link WireError} payload over the family maximum.
 */
export function buildUdpHeaders(
  out: Uint8Array,
  offset: number,
  src: SocketAddress,
  dst: SocketAddress,
  payload: Uint8Array,
  options: UdpPacketOptions,
): number {
  if (src.family !== dst.family) throw new AddressError(`Source and destination families differ (IPv${src.family} → IPv${dst.family})`);
  const n = payload.length;
  if (n > maxUdpPayload(src.family)) {
    throw new WireError("too-big", `UDP payload of ${n} bytes exceeds the IPv${src.family} maximum ${maxUdpPayload(src.family)}`);
  }
  const udpLength = UDP_HEADER_LENGTH + n;
  const ttl = options.ttl ?? 64;
  const tos = options.tos ?? 0;
  let u: number;
  if (src.family === 4) {
    u = offset + IPV4_HEADER_LENGTH;
    writeIpv4Header(
      out,
      offset,
      IPV4_HEADER_LENGTH,
      tos,
      IPV4_HEADER_LENGTH + udpLength,
      options.identification ?? 0,
      options.dontFragment ? 0x4000 : 0,
      ttl,
      IPPROTO_UDP,
      src.ip,
      dst.ip,
    );
    if (options.checksums.ipv4Header === "compute") {
      const c = finishChecksum(sumBytes(out, offset, u));
      out[offset + 10] = c >>> 8;
      out[offset + 11] = c & 0xff;
    }
  } else {
    if (options.checksums.udp === "zero") throw new WireError("bad-version", "UDP checksum is mandatory over IPv6");
    u = offset + IPV6_HEADER_LENGTH;
    writeIpv6Header(out, offset, tos, options.flowLabel ?? 0, udpLength, IPPROTO_UDP, ttl, src.ip, dst.ip);
  }
  writeUdpHeader(out, u, src.port, dst.port, udpLength, options.checksums.udp === "compute" ? udpChecksumFor(src, dst, payload) : 0);
  return u + UDP_HEADER_LENGTH - offset;
}

/**
 * The UDP checksum of `payload` sent src → dst, as it goes in the header (0 becomes 0xffff).
 * @example udpChecksumFor(src, dst, payload) // 0x1c46
 */
export function udpChecksumFor(src: SocketAddress, dst: SocketAddress, payload: Uint8Array): number {
  const udpLength = UDP_HEADER_LENGTH + payload.length;
  // The UDP header's own words, summed arithmetically: ports, length (checksum field is zero). The
  // pseudo-header holds the length once more.
  let sum = pseudoHeaderSum(src.ip, dst.ip, IPPROTO_UDP, udpLength) + src.port + dst.port + udpLength + sumBytes(payload, 0, payload.length);
  // udpChecksumValue, inlined: this runs once per datagram.
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff || 0xffff;
}

/**
 * Write a whole IP + UDP packet (headers, then a copy of the payload) into `out` at `offset`; returns
 * its length. `out` must have room for {@link udpHeadersLength} + payload bytes.
 * @example const len = buildUdpPacket(buf, 0, src, dst, payload, { checksums: ALL_CHECKSUMS });
 */
export function buildUdpPacket(
  out: Uint8Array,
  offset: number,
  src: SocketAddress,
  dst: SocketAddress,
  payload: Uint8Array,
  options: UdpPacketOptions,
): number {
  const need = udpHeadersLength(src.family) + payload.length;
  if (out.length - offset < need) throw new WireError("too-big", `packet of ${need} bytes does not fit the ${out.length - offset}-byte buffer`);
  const h = buildUdpHeaders(out, offset, src, dst, payload, options);
  out.set(payload, offset + h);
  return h + payload.length;
}
