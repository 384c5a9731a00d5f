/**
 * The datagrams one receive batch (or poll round) hands to a transport, in records reused from
 * earlier batches: filling it allocates only the payload views.
 * @module
 */
import type { Datagram, SocketAddress } from "@anysrc/core";

/** A reusable list of datagram records. */
export interface DatagramBatch {
  /** What was added since the last `clear`, in order. */
  readonly list: readonly Datagram[];
  add(src: SocketAddress, dst: SocketAddress, payload: Uint8Array): void;
  clear(): void;
}

/**
 * An empty batch.
 * @example const b = createDatagramBatch(); b.add(server, client, payload); emitter.emit(b.list, "transport-refused"); b.clear();
 */
export function createDatagramBatch(): DatagramBatch {
  const records: { src: SocketAddress; dst: SocketAddress; payload: Uint8Array }[] = [];
  const list: Datagram[] = [];
  return {
    list,
    add(src, dst, payload) {
      const k = list.length;
      let r = records[k];
      if (!r) records[k] = r = { src, dst, payload };
      else {
        r.src = src;
        r.dst = dst;
        r.payload = payload;
      }
      list.push(r);
    },
    clear() {
      list.length = 0;
    },
  };
}
