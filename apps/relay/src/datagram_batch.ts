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
  /** One more datagram; `tos` its class (0 default), `ttl` its TTL (-1: the transport's default). */
  add(src: SocketAddress, dst: SocketAddress, payload: Uint8Array, tos?: number, ttl?: number): void;
  clear(): void;
}

/**
 * An empty batch.
 * @example const b = createDatagramBatch(); b.add(server, client, payload); outbound.emit(b.list, "transport-refused"); b.clear();
 */
export function createDatagramBatch(): DatagramBatch {
  // Every record has all five fields from the start: one shape for the transports' loops.
  const records: { src: SocketAddress; dst: SocketAddress; payload: Uint8Array; tos: number; ttl: number | undefined }[] = [];
  const list: Datagram[] = [];
  return {
    list,
    add(src, dst, payload, tos = 0, ttl = -1) {
      const k = list.length;
      let r = records[k];
      if (!r) records[k] = r = { src, dst, payload, tos, ttl: ttl < 0 ? undefined : ttl };
      else {
        r.src = src;
        r.dst = dst;
        r.payload = payload;
        r.tos = tos;
        r.ttl = ttl < 0 ? undefined : ttl;
      }
      list.push(r);
    },
    clear() {
      list.length = 0;
    },
  };
}
