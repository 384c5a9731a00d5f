/**
 * 64-bit fields (pointers, size_t) written into memory shared with the kernel, through the 32-bit
 * view every ring keeps over its ArrayBuffer: a JS number holds any address x86-64 hands out.
 * @module
 */

/**
 * A writer of little-endian u64 fields into `words`' buffer.
 * @example const put64 = u64Writer(words); put64(16, base + iovAt) // msg_iov
 */
export function u64Writer(words: Uint32Array): (byteOffset: number, value: number) => void {
  return (byteOffset, value) => {
    words[byteOffset >>> 2] = value % 0x100000000;
    words[(byteOffset >>> 2) + 1] = Math.floor(value / 0x100000000);
  };
}
