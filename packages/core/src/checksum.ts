/**
 * The Internet checksum (RFC 1071): one's complement sum of 16-bit words, over 32-bit words when the
 * bytes are 4-byte aligned. A little-endian `Uint32Array` read yields byte-swapped 16-bit halves; the
 * one's complement sum is byte-order independent (RFC 1071 §2(B)), so we sum swapped and swap once.
 * @module
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// Two-entry cache: a transport sums a header buffer and a payload buffer per packet, each reused, so
// the Uint32Array views over them are made once instead of once per packet.
let bufferA: ArrayBufferLike | undefined;
let wordsA: Uint32Array = new Uint32Array(0);
let bufferB: ArrayBufferLike | undefined;
let wordsB: Uint32Array = new Uint32Array(0);

function wordsOf(buffer: ArrayBufferLike): Uint32Array {
  if (buffer === bufferA) return wordsA;
  if (buffer !== bufferB) {
    bufferB = buffer;
    wordsB = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  }
  // Most recent first.
  const b = bufferA, w = wordsA;
  bufferA = bufferB;
  wordsA = wordsB;
  bufferB = b;
  wordsB = w;
  return wordsA;
}

/** Fold a sum of 16-bit words (any size below 2^53) to 16 bits with end-around carry. */
export function foldChecksum(sum: number): number {
  if (sum > 0xffffffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * One's complement sum (folded to 16 bits, not inverted) of `bytes[start, end)` read as big-endian
 * 16-bit words, an odd final byte padded with zero. Add sums of consecutive regions that start at even
 * offsets, then {@link finishChecksum}.
 * @example finishChecksum(sumBytes(header, 0, 20)) // the IPv4 header checksum (with its field zeroed)
 */
export function sumBytes(bytes: Uint8Array, start: number, end: number): number {
  let sum = 0;
  let i = start;
  const absolute = bytes.byteOffset + start;
  // Short regions (headers) are cheaper byte-wise than a view lookup.
  if (LITTLE_ENDIAN && (absolute & 3) === 0 && end - start >= 64) {
    const words = wordsOf(bytes.buffer);
    const first = absolute >>> 2;
    const last = first + ((end - start) >>> 2);
    // Two int32 accumulators: each takes at most 16384 × 0xffff for a 64 KiB region, below 2^31.
    let lo = 0;
    let hi = 0;
    for (let k = first; k < last; k++) {
      const w = words[k]!;
      lo = (lo + (w & 0xffff)) | 0;
      hi = (hi + (w >>> 16)) | 0;
    }
    const swapped = foldChecksum(lo + hi);
    sum = ((swapped & 0xff) << 8) | (swapped >>> 8);
    i = start + (last - first) * 4;
  }
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  return foldChecksum(sum);
}

/**
 * Invert a folded sum into the value that goes in a checksum field.
 * @example finishChecksum(0xddf2) // 0x220d (RFC 1071 §3 example)
 */
export function finishChecksum(sum: number): number {
  return ~foldChecksum(sum) & 0xffff;
}

/** Sum of 16-bit words of an address (4 or 16 bytes, always even length). */
function sumAddress(ip: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < ip.length; i += 2) s += (ip[i]! << 8) | ip[i + 1]!;
  return s;
}

/**
 * Pseudo-header sum for UDP/TCP over IPv4 (RFC 768) or IPv6 (RFC 8200 §8.1), chosen by address size.
 * @example pseudoHeaderSum(src.ip, dst.ip, 17, 8 + payload.length)
 */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  // IPv6 carries a 32-bit upper-layer length; for IPv4 it is 16 bits. Both sum the same way here.
  return sumAddress(src) + sumAddress(dst) + protocol + (length >>> 16) + (length & 0xffff);
}

/**
 * RFC 1624 (eqn. 3) incremental update: the new checksum after one 16-bit word changes from `oldWord`
 * to `newWord`, without touching the rest of the data.
 * @example updateChecksum(ipv4Checksum, oldTtlProto, newTtlProto)
 */
export function updateChecksum(checksum: number, oldWord: number, newWord: number): number {
  return ~foldChecksum((~checksum & 0xffff) + (~oldWord & 0xffff) + newWord) & 0xffff;
}

/**
 * The checksum of a UDP header + payload as it goes on the wire: 0 becomes 0xffff, because 0 means
 * "no checksum" (RFC 768), and is forbidden altogether over IPv6 (RFC 8200 §8.1).
 */
export function udpChecksumValue(sum: number): number {
  const c = finishChecksum(sum);
  return c === 0 ? 0xffff : c;
}
