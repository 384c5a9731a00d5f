/**
 * Native addresses of typed-array views, remembered per ArrayBuffer: for adapters whose own way to
 * get a pointer costs an allocation or a native call per view (Deno's UnsafePointer.of, Node's
 * getRawPointer). Senders reuse their payload buffers, so each is asked once; the last one is
 * answered without a map lookup. An ArrayBuffer that is not resizable never moves.
 * @module
 */

/**
 * `addressOf` for an adapter, given how to get the base address of a whole buffer (its first byte).
 * @example const addressOf = bufferAddresses((b) => Number(ffi.getRawPointer(new Uint8Array(b))));
 */
export function bufferAddresses(baseOf: (buffer: ArrayBufferLike) => number): (view: Uint8Array | Int32Array | Uint32Array) => number {
  const bases = new WeakMap<ArrayBufferLike, number>();
  let lastBuffer: ArrayBufferLike | undefined;
  let lastBase = 0;
  return (view) => {
    const buffer = view.buffer;
    if (buffer !== lastBuffer) {
      let base = bases.get(buffer);
      if (base === undefined) {
        base = baseOf(buffer);
        bases.set(buffer, base);
      }
      lastBuffer = buffer;
      lastBase = base;
    }
    return lastBase + view.byteOffset;
  };
}
