/**
 * IPv4 header (RFC 791): a view over bytes and a record with parse/emit.
 * @module
 */
import { finishChecksum, sumBytes } from "./checksum.ts";
import { WireError } from "./errors.ts";

/** Length of an IPv4 header without options. */
export const IPV4_HEADER_LENGTH = 20;
/** Largest IPv4 packet, and so the largest UDP payload is 65535 - 20 - 8 = 65507. */
export const IPV4_MAX_PACKET = 65535;

/** Who fills a checksum on the way out: we compute it, or leave zero for the kernel or nobody. */
export type ChecksumMode = "compute" | "zero";

/**
 * Field accessors at constant offsets over an IPv4 header in a byte buffer. No copies, no checks:
 * use {@link parseIpv4} on untrusted bytes first.
 * @example new Ipv4View(packet).ttl
 */
export class Ipv4View {
  // Fields declared, not parameter properties: Node's type stripping runs only erasable syntax.
  readonly bytes: Uint8Array;
  readonly offset: number;
  constructor(bytes: Uint8Array, offset = 0) {
    this.bytes = bytes;
    this.offset = offset;
  }
  private u16(at: number): number {
    return (this.bytes[this.offset + at]! << 8) | this.bytes[this.offset + at + 1]!;
  }
  private setU16(at: number, v: number): void {
    this.bytes[this.offset + at] = v >>> 8;
    this.bytes[this.offset + at + 1] = v & 0xff;
  }
  get version(): number {
    return this.bytes[this.offset]! >>> 4;
  }
  /** Header length in bytes (IHL × 4). */
  get headerLength(): number {
    return (this.bytes[this.offset]! & 0x0f) * 4;
  }
  get dscp(): number {
    return this.bytes[this.offset + 1]! >>> 2;
  }
  get ecn(): number {
    return this.bytes[this.offset + 1]! & 3;
  }
  get totalLength(): number {
    return this.u16(2);
  }
  set totalLength(v: number) {
    this.setU16(2, v);
  }
  get identification(): number {
    return this.u16(4);
  }
  get dontFragment(): boolean {
    return (this.bytes[this.offset + 6]! & 0x40) !== 0;
  }
  get moreFragments(): boolean {
    return (this.bytes[this.offset + 6]! & 0x20) !== 0;
  }
  /** Fragment offset in bytes (the field counts 8-byte units). */
  get fragmentOffset(): number {
    return (this.u16(6) & 0x1fff) * 8;
  }
  get ttl(): number {
    return this.bytes[this.offset + 8]!;
  }
  set ttl(v: number) {
    this.bytes[this.offset + 8] = v;
  }
  get protocol(): number {
    return this.bytes[this.offset + 9]!;
  }
  get checksum(): number {
    return this.u16(10);
  }
  set checksum(v: number) {
    this.setU16(10, v);
  }
  get src(): Uint8Array {
    return this.bytes.subarray(this.offset + 12, this.offset + 16);
  }
  get dst(): Uint8Array {
    return this.bytes.subarray(this.offset + 16, this.offset + 20);
  }
  /** True when the header checksum verifies (the sum over the header, field included, is 0xffff). */
  get checksumValid(): boolean {
    return finishChecksum(sumBytes(this.bytes, this.offset, this.offset + this.headerLength)) === 0;
  }
}

/** The fields of an IPv4 header as a plain record. */
export interface Ipv4Header {
  readonly dscp: number;
  readonly ecn: number;
  readonly identification: number;
  readonly dontFragment: boolean;
  readonly moreFragments: boolean;
  /** Offset of this fragment's data in the original payload, in bytes (multiple of 8). */
  readonly fragmentOffset: number;
  readonly ttl: number;
  readonly protocol: number;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  /** Raw option bytes, a multiple of 4, at most 40. */
  readonly options: Uint8Array;
  /** Bytes after the header (total length − header length). */
  readonly payloadLength: number;
}

/** A parsed IPv4 packet: the record, the payload as a view into the input, and checksum status. */
export interface ParsedIpv4 {
  readonly header: Ipv4Header;
  readonly headerLength: number;
  readonly totalLength: number;
  readonly checksumValid: boolean;
  readonly payload: Uint8Array;
}

/**
 * Parse an IPv4 header from untrusted bytes; lengths are checked first, so the result never points
 * outside the input. Bytes past the total length (link padding) are ignored.
 * @example parseIpv4(packet).header.ttl
 * @throws {WireError} truncated input, version ≠ 4, IHL < 5, total length outside the input.
 */
export function parseIpv4(bytes: Uint8Array): ParsedIpv4 {
  if (bytes.length < IPV4_HEADER_LENGTH) {
    throw new WireError("truncated", `truncated IPv4 header: ${bytes.length} of ${IPV4_HEADER_LENGTH} bytes`);
  }
  const v = new Ipv4View(bytes);
  if (v.version !== 4) throw new WireError("bad-version", `not an IPv4 header: version ${v.version}`);
  const ihl = v.headerLength;
  if (ihl < IPV4_HEADER_LENGTH) {
    throw new WireError("bad-header-length", `IPv4 IHL ${ihl / 4} is below the minimum 5`);
  }
  if (ihl > bytes.length) {
    throw new WireError("truncated", `truncated IPv4 header: ${bytes.length} of ${ihl} bytes (IHL ${ihl / 4})`);
  }
  const total = v.totalLength;
  if (total < ihl) {
    throw new WireError("length-mismatch", `IPv4 total length ${total} is smaller than its header (${ihl} bytes)`);
  }
  if (total > bytes.length) {
    throw new WireError("length-mismatch", `IPv4 total length ${total} exceeds the ${bytes.length} bytes given`);
  }
  const header: Ipv4Header = {
    dscp: v.dscp,
    ecn: v.ecn,
    identification: v.identification,
    dontFragment: v.dontFragment,
    moreFragments: v.moreFragments,
    fragmentOffset: v.fragmentOffset,
    ttl: v.ttl,
    protocol: v.protocol,
    src: bytes.slice(12, 16),
    dst: bytes.slice(16, 20),
    options: bytes.slice(IPV4_HEADER_LENGTH, ihl),
    payloadLength: total - ihl,
  };
  return { header, headerLength: ihl, totalLength: total, checksumValid: v.checksumValid, payload: bytes.subarray(ihl, total) };
}

/** Header length, in bytes, that {@link emitIpv4} writes for this record. */
export function ipv4HeaderLength(h: Ipv4Header): number {
  return IPV4_HEADER_LENGTH + h.options.length;
}

/**
 * Write an IPv4 header into `out` at `offset`; returns the header length. The caller sized `out`.
 * `checksum: "zero"` leaves the header checksum for the kernel (raw sockets with IP_HDRINCL fill it).
 * @example const n = emitIpv4(header, buf, 0, "compute");
 * @throws {WireError} options not a multiple of 4 or over 40 bytes; total length over 65535.
 */
export function emitIpv4(h: Ipv4Header, out: Uint8Array, offset: number, checksum: ChecksumMode): number {
  const ihl = ipv4HeaderLength(h);
  if (h.options.length % 4 !== 0 || h.options.length > 40) {
    throw new WireError("bad-header-length", `IPv4 options must be a multiple of 4 and at most 40 bytes, got ${h.options.length}`);
  }
  const total = ihl + h.payloadLength;
  if (total > IPV4_MAX_PACKET) throw new WireError("too-big", `IPv4 packet of ${total} bytes exceeds ${IPV4_MAX_PACKET}`);
  if (h.fragmentOffset % 8 !== 0 || h.fragmentOffset > 0x1fff * 8) {
    throw new WireError("bad-fragment", `IPv4 fragment offset ${h.fragmentOffset} is not a multiple of 8 below 65536`);
  }
  const frag = (h.dontFragment ? 0x4000 : 0) | (h.moreFragments ? 0x2000 : 0) | (h.fragmentOffset >>> 3);
  writeIpv4Header(out, offset, ihl, ((h.dscp & 0x3f) << 2) | (h.ecn & 3), total, h.identification, frag, h.ttl, h.protocol, h.src, h.dst);
  out.set(h.options, offset + IPV4_HEADER_LENGTH);
  const o = offset;
  if (checksum === "compute") {
    const c = finishChecksum(sumBytes(out, o, o + ihl));
    out[o + 10] = c >>> 8;
    out[o + 11] = c & 0xff;
  }
  return ihl;
}

/**
 * Write the fixed IPv4 fields with the checksum zeroed; positional so the per-packet path builds no
 * record. `flagsFragment` is the raw 16-bit flags + offset word. Options, if any, are the caller's.
 * @example writeIpv4Header(buf, 0, 20, 0, 33, 0, 0x4000, 64, 17, src, dst)
 */
export function writeIpv4Header(
  out: Uint8Array,
  o: number,
  headerLength: number,
  tos: number,
  totalLength: number,
  identification: number,
  flagsFragment: number,
  ttl: number,
  protocol: number,
  src: Uint8Array,
  dst: Uint8Array,
): void {
  out[o] = 0x40 | (headerLength >>> 2);
  out[o + 1] = tos & 0xff;
  out[o + 2] = totalLength >>> 8;
  out[o + 3] = totalLength & 0xff;
  out[o + 4] = (identification >>> 8) & 0xff;
  out[o + 5] = identification & 0xff;
  out[o + 6] = flagsFragment >>> 8;
  out[o + 7] = flagsFragment & 0xff;
  out[o + 8] = ttl;
  out[o + 9] = protocol;
  out[o + 10] = 0;
  out[o + 11] = 0;
  out[o + 12] = src[0]!;
  out[o + 13] = src[1]!;
  out[o + 14] = src[2]!;
  out[o + 15] = src[3]!;
  out[o + 16] = dst[0]!;
  out[o + 17] = dst[1]!;
  out[o + 18] = dst[2]!;
  out[o + 19] = dst[3]!;
}
