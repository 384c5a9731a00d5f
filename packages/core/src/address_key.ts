/**
 * A number that stands for a socket address, for Maps on the per-datagram path (no string is built).
 * Exact for IPv4; for IPv6 a 52-bit hash, so a lookup must confirm with {@link sameSocketAddress}
 * (collisions are astronomically rare but a cache must not mix two peers up).
 * @module
 */
import type { SocketAddress } from "./address.ts";

const V6_FLAG = 2 ** 52;

/**
 * Key of `ip` (4 or 16 bytes at `offset`) and `port`.
 * @example addressKey(parseSocketAddress("198.18.1.2:53")) === addressKey(parseSocketAddress("198.18.1.2:53"))
 */
export function addressKeyOf(ip: Uint8Array, offset: number, length: 4 | 16, port: number): number {
  if (length === 4) {
    // 32-bit address × 65536 + port < 2^48: exact.
    return (((ip[offset]! << 24) | (ip[offset + 1]! << 16) | (ip[offset + 2]! << 8) | ip[offset + 3]!) >>> 0) * 65536 + port;
  }
  // Two FNV-1a style 32-bit hashes over address + port, combined into 52 bits.
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ port;
  for (let i = 0; i < 16; i++) {
    const b = ip[offset + i]!;
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ b, 0x5bd1e995) ^ (h2 >>> 15);
  }
  h1 = Math.imul(h1 ^ port, 0x01000193) >>> 0;
  return V6_FLAG + h1 * 1048576 + ((h2 >>> 0) & 0xfffff) - 1;
}

/**
 * Key of a socket address.
 * @example sessions.get(addressKey(client))
 */
export function addressKey(a: SocketAddress): number {
  return addressKeyOf(a.ip, 0, a.family === 4 ? 4 : 16, a.port);
}
