/**
 * UDP header (RFC 768): view, record, parse/emit, checksum over the IPv4/IPv6 pseudo-header.
 * @module
 */
import { finishChecksum, pseudoHeaderSum, sumBytes, udpChecksumValue } from "./checksum.ts";
import { WireError } from "./errors.ts";

/** Length of a UDP header. */
export const UDP_HEADER_LENGTH = 8;
/** IP protocol number of UDP. */
export const IPPROTO_UDP = 17;

/**
 * Field accessors over a UDP header.
 * @example new UdpView(segment).dstPort
 */
export class UdpView {
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
  get srcPort(): number {
    return this.u16(0);
  }
  get dstPort(): number {
    return this.u16(2);
  }
  get length(): number {
    return this.u16(4);
  }
  get checksum(): number {
    return this.u16(6);
  }
}

/** The fields of a UDP header. `length` covers header and payload. */
export interface UdpHeader {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly length: number;
  readonly checksum: number;
}

/** A parsed UDP datagram. `checksumValid` is null when it cannot be told (no pseudo-header, or 0 on IPv4). */
export interface ParsedUdp {
  readonly header: UdpHeader;
  readonly payload: Uint8Array;
  readonly checksumValid: boolean | null;
}

/**
 * Parse a UDP header + payload (the whole IP payload). With `src`/`dst` address bytes the checksum is
 * verified against the pseudo-header.
 * @example parseUdp(ip.payload, ip.header.src, ip.header.dst).payload
 * @throws {WireError} fewer than 8 bytes, or a length field that disagrees with the bytes given.
 */
export function parseUdp(bytes: Uint8Array, src?: Uint8Array, dst?: Uint8Array): ParsedUdp {
  if (bytes.length < UDP_HEADER_LENGTH) {
    throw new WireError("truncated", `truncated UDP header: ${bytes.length} of ${UDP_HEADER_LENGTH} bytes`);
  }
  const v = new UdpView(bytes);
  if (v.length !== bytes.length) {
    throw new WireError("length-mismatch", `UDP length ${v.length} disagrees with the ${bytes.length} bytes of IP payload`);
  }
  const header: UdpHeader = { srcPort: v.srcPort, dstPort: v.dstPort, length: v.length, checksum: v.checksum };
  let checksumValid: boolean | null = null;
  if (src && dst && !(header.checksum === 0 && src.length === 4)) {
    const sum = pseudoHeaderSum(src, dst, IPPROTO_UDP, bytes.length) + sumBytes(bytes, 0, bytes.length);
    checksumValid = finishChecksum(sum) === 0;
  }
  return { header, payload: bytes.subarray(UDP_HEADER_LENGTH), checksumValid };
}

/**
 * The 8 header bytes at `out[o]`, positionally: the per-datagram writer that {@link emitUdp} and the
 * packet builders share (no record, no checks).
 * @example writeUdpHeader(slot, 20, 7000, 40000, 8 + payload.length, checksum);
 */
export function writeUdpHeader(out: Uint8Array, o: number, srcPort: number, dstPort: number, length: number, checksum: number): void {
  out[o] = srcPort >>> 8;
  out[o + 1] = srcPort & 0xff;
  out[o + 2] = dstPort >>> 8;
  out[o + 3] = dstPort & 0xff;
  out[o + 4] = length >>> 8;
  out[o + 5] = length & 0xff;
  out[o + 6] = checksum >>> 8;
  out[o + 7] = checksum & 0xff;
}

/**
 * Write a UDP header at `offset` for the payload already at `offset + 8`, filling the checksum from the
 * pseudo-header when `src`/`dst` are given (otherwise 0, legal on IPv4 only). Returns 8.
 * @example emitUdp({ srcPort: 7000, dstPort: 40000 }, buf, 20, payload.length, src.ip, dst.ip)
 */
export function emitUdp(
  ports: { readonly srcPort: number; readonly dstPort: number },
  out: Uint8Array,
  offset: number,
  payloadLength: number,
  src?: Uint8Array,
  dst?: Uint8Array,
): number {
  const length = UDP_HEADER_LENGTH + payloadLength;
  if (length > 0xffff) throw new WireError("too-big", `UDP datagram of ${length} bytes exceeds 65535`);
  const o = offset;
  writeUdpHeader(out, o, ports.srcPort, ports.dstPort, length, 0);
  if (src && dst) {
    const c = udpChecksumValue(pseudoHeaderSum(src, dst, IPPROTO_UDP, length) + sumBytes(out, o, o + length));
    out[o + 6] = c >>> 8;
    out[o + 7] = c & 0xff;
  }
  return UDP_HEADER_LENGTH;
}
