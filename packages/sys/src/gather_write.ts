/**
 * writev from a reusable iovec array: one packet written to a TUN device from pieces that lie in
 * different places (headers in a scratch buffer, payloads where they were received), never copied.
 * The byte counts travel in the iovecs rather than as a size_t argument of write(2), which is slow on
 * Deno (see libc_signatures.ts).
 * @module
 */
import { adapter, libc } from "./libc.ts";

/** An iovec array and the writev over it. */
export interface GatherWrite {
  /** Most pieces one write can take. */
  readonly capacity: number;
  /** Piece `k` = `length` bytes at native `address`. */
  set(k: number, address: number, length: number): void;
  /**
   * writev of pieces 0 .. count-1 to `fd`. Returns what writev returns; on -1, errno() says why.
   */
  write(fd: number, count: number): number;
}

/**
 * An iovec array of `capacity` pieces (the kernel takes up to UIO_MAXIOV = 1024).
 * @example const g = createGatherWrite(65); g.set(0, adapter.addressOf(header), h); g.set(1, payloadAt, n); g.write(fd, 2);
 */
export function createGatherWrite(capacity: number): GatherWrite {
  // Over an ArrayBuffer of its own: a small typed array's inline storage can move under Bun's JIT (oven-sh/bun#32055).
  const words = new Uint32Array(new ArrayBuffer(capacity * 16));
  return {
    capacity,
    set(k, address, length) {
      words[4 * k] = address % 0x100000000;
      words[4 * k + 1] = Math.floor(address / 0x100000000);
      words[4 * k + 2] = length;
      words[4 * k + 3] = 0;
    },
    write: (fd, count) => libc.writev(fd, words, count),
  };
}

const pair = createGatherWrite(2);

/**
 * One writev of `headerLength` bytes of `header` followed by `length` bytes at native `address`: on
 * a TUN device, one packet whose payload is never copied. Returns what writev returns; on -1,
 * errno() says why.
 * @example writeHeaderAndPayload(tunFd, header, h, adapter.addressOf(payload), payload.length)
 */
export function writeHeaderAndPayload(fd: number, header: Uint8Array, headerLength: number, address: number, length: number): number {
  pair.set(0, adapter.addressOf(header), headerLength);
  pair.set(1, address, length);
  return pair.write(fd, length > 0 ? 2 : 1);
}
