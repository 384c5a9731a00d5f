/**
 * The payload pattern senders write and receivers verify, byte for byte: bytes 0–3 carry the
 * sequence number (big-endian) when the payload has room, every other byte is (i × 31 + size) & 0xff.
 * Mirrored in udp_peer.mjs.
 * @module
 */

/** Fill `out[0, size)` with the pattern for `seq`. */
export function fillPattern(out: Uint8Array, seq: number, size: number): void {
  for (let i = 0; i < size; i++) out[i] = (i * 31 + size) & 0xff;
  if (size >= 4) {
    out[0] = seq >>> 24;
    out[1] = (seq >>> 16) & 0xff;
    out[2] = (seq >>> 8) & 0xff;
    out[3] = seq & 0xff;
  }
}
