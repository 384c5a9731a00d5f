/**
 * IP fragmentation to a given MTU: IPv4 (RFC 791 §3.2) and IPv6 Fragment headers (RFC 8200 §4.5).
 * Raw and TUN senders need it because IP_HDRINCL and TUN never fragment for you.
 * @module
 */
import { finishChecksum, sumBytes } from "./checksum.ts";
import { WireError } from "./errors.ts";
import { type ChecksumMode, IPV4_HEADER_LENGTH, parseIpv4 } from "./ipv4.ts";
import { emitIpv6FragmentHeader, IPV6_FRAGMENT_HEADER_LENGTH, IPV6_HEADER_LENGTH, NextHeader, parseIpv6 } from "./ipv6.ts";

/** Smallest MTU every IPv4 link carries (RFC 791); below it fragments cannot carry 8 data bytes. */
export const IPV4_MIN_MTU = 68;
/** Smallest MTU every IPv6 link carries (RFC 8200 §5). */
export const IPV6_MIN_MTU = 1280;

/** Keep only options whose "copied" bit is set, padded to 4 bytes: what later fragments carry. */
function copiedOptions(options: Uint8Array): Uint8Array {
  const kept: number[] = [];
  for (let i = 0; i < options.length;) {
    const type = options[i]!;
    if (type === 0) break; // End of option list.
    if (type === 1) {
      i++;
      continue;
    } // No-operation.
    const len = options[i + 1] ?? 0;
    if (len < 2 || i + len > options.length) break;
    if (type & 0x80) { for (let k = 0; k < len; k++) kept.push(options[i + k]!); }
    i += len;
  }
  while (kept.length % 4 !== 0) kept.push(0);
  return Uint8Array.from(kept);
}

/**
 * Split an IPv4 packet into fragments of at most `mtu` bytes; returns `[packet]` when it fits.
 * Works on a packet that is itself a fragment. Each fragment gets a fresh header checksum unless
 * `checksum` is "zero".
 * @example fragmentIpv4(packet, 1500).length // 3 for a 3000-byte UDP payload
 * @throws {WireError} DF set on a packet over the MTU, or an MTU below 68.
 */
export function fragmentIpv4(packet: Uint8Array, mtu: number, checksum: ChecksumMode = "compute"): Uint8Array[] {
  const { header, headerLength, totalLength, payload } = parseIpv4(packet);
  if (totalLength <= mtu) return [packet.subarray(0, totalLength)];
  if (mtu < IPV4_MIN_MTU) throw new WireError("too-big", `MTU ${mtu} is below the IPv4 minimum ${IPV4_MIN_MTU}`);
  if (header.dontFragment) {
    throw new WireError("too-big", `IPv4 packet of ${totalLength} bytes exceeds MTU ${mtu} and has Don't Fragment set`);
  }
  const laterOptions = copiedOptions(header.options);
  const fragments: Uint8Array[] = [];
  let at = 0;
  while (at < payload.length) {
    const first = at === 0;
    const ihl = first ? headerLength : IPV4_HEADER_LENGTH + laterOptions.length;
    const room = Math.floor((mtu - ihl) / 8) * 8;
    const size = Math.min(room, payload.length - at);
    const last = at + size === payload.length;
    const out = new Uint8Array(ihl + size);
    out.set(packet.subarray(0, IPV4_HEADER_LENGTH), 0);
    out.set(first ? header.options : laterOptions, IPV4_HEADER_LENGTH);
    out[0] = 0x40 | (ihl >>> 2);
    out[2] = (ihl + size) >>> 8;
    out[3] = (ihl + size) & 0xff;
    const offsetUnits = (header.fragmentOffset + at) >>> 3;
    const more = !last || header.moreFragments;
    const field = (more ? 0x2000 : 0) | offsetUnits;
    out[6] = field >>> 8;
    out[7] = field & 0xff;
    out[10] = 0;
    out[11] = 0;
    if (checksum === "compute") {
      const c = finishChecksum(sumBytes(out, 0, ihl));
      out[10] = c >>> 8;
      out[11] = c & 0xff;
    }
    out.set(payload.subarray(at, at + size), ihl);
    fragments.push(out);
    at += size;
  }
  return fragments;
}

/**
 * Split an IPv6 packet into fragments of at most `mtu` bytes, inserting a Fragment header after the
 * unfragmentable part (fixed header, Hop-by-Hop, Routing). Returns `[packet]` when it fits.
 * @example fragmentIpv6(packet, 1280, 0x1234).length
 * @throws {WireError} a packet that already has a Fragment header, or an MTU too small for 8 data bytes.
 */
export function fragmentIpv6(packet: Uint8Array, mtu: number, identification: number): Uint8Array[] {
  const parsed = parseIpv6(packet);
  if (parsed.totalLength <= mtu) return [packet.subarray(0, parsed.totalLength)];
  if (parsed.fragment) throw new WireError("bad-fragment", "IPv6 packet already carries a Fragment header");
  // Unfragmentable part ends after the last Hop-by-Hop or Routing header (RFC 8200 §4.5).
  let unfragmentableEnd = IPV6_HEADER_LENGTH;
  let nextFieldAt = 6; // Where the Next Header byte that will point at the Fragment header lives.
  for (const ext of parsed.extensions) {
    if (ext.type === NextHeader.HopByHop || ext.type === NextHeader.Routing) {
      nextFieldAt = ext.offset;
      unfragmentableEnd = ext.offset + ext.length;
    }
  }
  const originalNext = packet[nextFieldAt]!;
  const fragmentable = packet.subarray(unfragmentableEnd, parsed.totalLength);
  const room = Math.floor((mtu - unfragmentableEnd - IPV6_FRAGMENT_HEADER_LENGTH) / 8) * 8;
  if (room < 8) throw new WireError("too-big", `MTU ${mtu} leaves no room for IPv6 fragment data`);
  const fragments: Uint8Array[] = [];
  for (let at = 0; at < fragmentable.length; at += room) {
    const size = Math.min(room, fragmentable.length - at);
    const out = new Uint8Array(unfragmentableEnd + IPV6_FRAGMENT_HEADER_LENGTH + size);
    out.set(packet.subarray(0, unfragmentableEnd), 0);
    out[nextFieldAt] = NextHeader.Fragment;
    const payloadLength = out.length - IPV6_HEADER_LENGTH;
    out[4] = payloadLength >>> 8;
    out[5] = payloadLength & 0xff;
    emitIpv6FragmentHeader(
      { nextHeader: originalNext, fragmentOffset: at, moreFragments: at + size < fragmentable.length, identification },
      out,
      unfragmentableEnd,
    );
    out.set(fragmentable.subarray(at, at + size), unfragmentableEnd + IPV6_FRAGMENT_HEADER_LENGTH);
    fragments.push(out);
  }
  return fragments;
}

/**
 * Fragment an IPv4 or IPv6 packet by its version nibble.
 * @example fragmentPacket(packet, 1500, 7)
 */
export function fragmentPacket(packet: Uint8Array, mtu: number, identification: number, ipv4Checksum: ChecksumMode = "compute"): Uint8Array[] {
  const version = (packet[0] ?? 0) >>> 4;
  if (version === 4) return fragmentIpv4(packet, mtu, ipv4Checksum);
  if (version === 6) return fragmentIpv6(packet, mtu, identification);
  throw new WireError("bad-version", `not an IP packet: version ${version}`);
}
