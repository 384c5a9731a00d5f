/**
 * Small byte strings that live long (the IP address of each session, remote and bound source)
 * copied into shared chunks, one view each, instead of one ArrayBuffer each. Deno's V8 is built
 * with `v8_typed_array_max_size_in_heap=0`, so there every `new Uint8Array(4)` is an ArrayBuffer
 * with its own off-heap backing store: ~580 B resident per 4-byte address, against ~240 B as a view
 * of a chunk (Node: ~420 against ~270). 10 000 sessions notice: 3 MiB.
 *
 * A view is never handed out twice: the arena only moves forward and a chunk is collected with its
 * last view, so a kept address cannot change under its holder. The price of that is a chunk kept
 * whole by one long-lived view among expired ones, which is why chunks are small.
 * @module
 */

/** Where the next copy goes. */
export interface ByteArena {
  readonly chunkSize: number;
  chunk: Uint8Array;
  at: number;
}

/**
 * An arena of `chunkSize`-byte chunks. 256 B (16 IPv6 or 64 IPv4 addresses) keeps the worst case —
 * one live address holding its chunk — near what a separate buffer costs.
 * @example const arena = createByteArena();
 */
export function createByteArena(chunkSize = 256): ByteArena {
  return { chunkSize, chunk: new Uint8Array(0), at: 0 };
}

/**
 * A copy of `src[start, end)` that stays as it is (a view of the arena's current chunk; a longer
 * run than a chunk gets a buffer of its own).
 * @example const ip = arenaCopy(arena, ring.memory, at + 4, at + 8);
 */
export function arenaCopy(a: ByteArena, src: Uint8Array, start: number, end: number): Uint8Array {
  const n = end - start;
  if (n > a.chunkSize) return src.slice(start, end);
  if (a.at + n > a.chunk.length) {
    a.chunk = new Uint8Array(a.chunkSize);
    a.at = 0;
  }
  const view = a.chunk.subarray(a.at, a.at + n);
  for (let i = 0; i < n; i++) view[i] = src[start + i]!;
  a.at += n;
  return view;
}
