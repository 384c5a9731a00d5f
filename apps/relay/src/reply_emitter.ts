/**
 * Hands datagrams to the chosen transport, and to the fallback transport when the first refuses one
 * (bind-source EADDRINUSE: a local service owns that source address). Shared by tproxy and forward.
 * @module
 */
import { type Datagram, SystemError, type Transport, TransportError } from "@anysrc/core";
import { type RelayCounters, countRelayDrop } from "./relay_stats.ts";

/** Emits batches; counts what it could not send. */
export interface ReplyEmitter {
  emit(batch: readonly Datagram[]): void;
  readonly transports: readonly Transport[];
}

/**
 * Wrap a primary transport and an optional fallback.
 * @example const out = createReplyEmitter(bindsrc, raw, counters); out.emit(replies);
 */
export function createReplyEmitter(primary: Transport, fallback: Transport | undefined, counters: RelayCounters): ReplyEmitter {
  const sendOne = (d: Datagram) => {
    try {
      primary.send(d);
    } catch (e) {
      if (!(e instanceof SystemError) || !fallback) throw e;
      fallback.send(d);
      counters.fallback++;
    }
  };
  return {
    transports: fallback ? [primary, fallback] : [primary],
    emit(batch) {
      if (batch.length === 0) return;
      try {
        if (!fallback) {
          primary.sendBatch(batch);
          return;
        }
        // With a fallback, each datagram must be offered on its own so a refusal is attributable.
        for (const d of batch) {
          try {
            sendOne(d);
          } catch (e) {
            if (!(e instanceof SystemError) && !(e instanceof TransportError)) throw e;
            countRelayDrop(counters, "transport-refused");
          }
        }
      } catch (e) {
        // The transport counted its own drops (e.g. address-in-use); the relay keeps serving.
        if (!(e instanceof SystemError) && !(e instanceof TransportError)) throw e;
        countRelayDrop(counters, "transport-refused");
      }
    },
  };
}
