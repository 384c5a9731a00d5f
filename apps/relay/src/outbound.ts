/**
 * The way out for every datagram the relay and the forwarder send (tproxy's replies, forward's
 * copies): the chosen transport, and the fallback transport when the first fails one (bind-source
 * EADDRINUSE: a local service owns that source address; the TUN device gone). The one place that
 * decides what "accepted" means for the counters.
 * @module
 */
import { type Datagram, SystemError, type Transport, TransportError } from "@anysrc/core";
import { countRelayDrop, type RelayCounters, type RelayDropReason } from "./relay_stats.ts";

/** Emits batches; counts what it could not send. */
export interface Outbound {
  /**
   * Offer `batch`; returns how many the primary transport accepted — sent, queued, or dropped and
   * counted by the transport itself. The rest were refused before reaching any transport (a
   * datagram the transport cannot express) and are counted here under `refused`.
   */
  emit(batch: readonly Datagram[], refused: RelayDropReason): number;
  readonly transports: readonly Transport[];
}

/** What became of one datagram offered to one transport. */
type Outcome = "accepted" | "refused" | "failed";

function offer(t: Transport, d: Datagram, onGone: (e: TransportError) => void): Outcome {
  try {
    t.send(d);
    return "accepted";
  } catch (e) {
    // A SystemError or a vanished device: the transport took the datagram and counted its loss.
    if (e instanceof SystemError) return "failed";
    if (!(e instanceof TransportError)) throw e;
    if (e.kind !== "device-gone") return "refused";
    onGone(e);
    return "failed";
  }
}

/**
 * Wrap a primary transport and an optional fallback. `onGone` hears once that the primary's TUN
 * device disappeared (it has stopped for good).
 * @example const out = createOutbound(bindsrc, raw, counters); out.emit(replies, "transport-refused");
 */
export function createOutbound(
  primary: Transport,
  fallback: Transport | undefined,
  counters: RelayCounters,
  onGone: (e: TransportError) => void = () => {},
): Outbound {
  let told = false;
  const gone = (e: TransportError) => {
    if (told) return;
    told = true;
    onGone(e);
  };
  return {
    transports: fallback ? [primary, fallback] : [primary],
    emit(batch, refused) {
      if (batch.length === 0) return 0;
      if (!fallback) {
        try {
          primary.sendBatch(batch);
          return batch.length;
        } catch (e) {
          // The transport counted its own drops (e.g. address-in-use); the relay keeps serving.
          if (e instanceof SystemError) return batch.length;
          if (!(e instanceof TransportError)) throw e;
          if (e.kind === "device-gone") {
            gone(e);
            return batch.length;
          }
          // A validation error refused the whole batch before anything was sent: one by one below,
          // so one bad datagram does not cost its neighbours.
        }
      }
      let accepted = 0;
      for (const d of batch) {
        const outcome = offer(primary, d, gone);
        if (outcome === "refused") {
          countRelayDrop(counters, refused);
          continue;
        }
        accepted++;
        if (outcome === "failed" && fallback && offer(fallback, d, () => {}) === "accepted") counters.fallback++;
      }
      return accepted;
    },
  };
}
