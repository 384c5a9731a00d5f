/**
 * The bind-source backend: a UDP socket per source address, IP_TRANSPARENT and bound to that
 * (foreign) address, from a {@link BindSourceCache}. The kernel fills checksums and fragments;
 * consecutive datagrams from one source leave in one sendmmsg, and with offloads a run of same-size
 * datagrams to one destination is one message of that sendmmsg (UDP_SEGMENT: the kernel cuts it).
 * @module
 */
import {
  countDrop,
  countError,
  countReported,
  createTransportStats,
  type Datagram,
  sameIp,
  SystemError,
  type Transport,
  UDP_GSO_MAX_SEGMENTS,
} from "@anysrc/core";
import { createQueuedTransport, createRecvRing, createSendRing, type QueuedError, queuedErrorKind, type RecvRing } from "@anysrc/sys";
import { type BindSourceCacheStats, createBindSourceCache, type SourceSocket } from "./bind_source_cache.ts";
import { createBindSourceEmit } from "./bindsrc_emit.ts";

/** Options of the bind-source transport. */
export interface BindSourceTransportOptions {
  /** Most source sockets open at once (LRU beyond); default 1024. */
  readonly capacity?: number;
  /** Close source sockets idle this long; default 60 000 ms. */
  readonly idleTimeoutMs?: number;
  readonly mark?: number;
  readonly sendBuffer?: number;
  /** Datagrams per sendmmsg; default 32. */
  readonly batch?: number;
  /** Datagrams held per socket while it is not writable; default 1024. */
  readonly queueLimit?: number;
  /**
   * Datagrams that arrive on a source socket: traffic to that foreign address which the kernel gave
   * to our socket instead of the TPROXY listener. Without a handler they are drained and counted as
   * dropped "stray".
   */
  readonly onReceive?: (d: Datagram) => void;
  readonly closeTimeoutMs?: number;
  /** GSO sends (UDP_SEGMENT) for runs of same-size datagrams to one destination; default true. */
  readonly offload?: boolean;
  /**
   * Largest packet a GSO segment may make (segment + IP + UDP headers): the kernel refuses segments
   * over the route's MTU (EMSGSIZE), and that socket then sends plainly. Default 1500.
   */
  readonly segmentMtu?: number;
  /** Told once when the kernel first refuses a GSO send. */
  readonly onOffloadFallback?: (reason: string) => void;
  /** SO_BROADCAST on every source socket: allow broadcast destinations. */
  readonly broadcast?: boolean;
}

/** The bind-source transport: the contract plus its socket cache counters. */
export interface BindSourceTransport extends Transport {
  readonly kind: "bindsrc";
  readonly sockets: Readonly<BindSourceCacheStats>;
}

/**
 * Open a bind-source transport. Needs CAP_NET_ADMIN (IP_TRANSPARENT).
 * @example const t = createBindSourceTransport(); t.send({ src: server, dst: client, payload });
 * @throws (from send) {SystemError} EADDRINUSE naming the source when a local service owns it.
 */
export function createBindSourceTransport(options: BindSourceTransportOptions = {}): BindSourceTransport {
  const batch = options.batch ?? 32;
  const stats = createTransportStats();
  const emit = createBindSourceEmit({
    ring: createSendRing({ slots: batch, headerSize: 8, iovecs: UDP_GSO_MAX_SEGMENTS }),
    batch,
    stats,
    offload: options.offload !== false,
    segmentMtu: options.segmentMtu ?? 1500,
    onOffloadFallback: options.onOffloadFallback,
  });
  let strayRing: RecvRing | undefined;
  const onQueuedError = (e: QueuedError) => countReported(stats, queuedErrorKind(e));
  /** One batch of strays; a pending socket error (an ICMP error's ECONNREFUSED) is taken from the error queue instead. */
  const receiveStrays = (s: SourceSocket): number => {
    try {
      return strayRing!.receive(s.fd);
    } catch (e) {
      if (!(e instanceof SystemError)) throw e;
      strayRing!.receiveErrors(s.fd, onQueuedError);
      return strayRing!.receive(s.fd);
    }
  };

  const cache = createBindSourceCache({
    ...(options.capacity !== undefined ? { capacity: options.capacity } : {}),
    ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
    ...(options.mark !== undefined ? { mark: options.mark } : {}),
    ...(options.sendBuffer !== undefined ? { sendBuffer: options.sendBuffer } : {}),
    broadcast: options.broadcast === true,
    onError(s) {
      strayRing ??= createRecvRing({ slots: 16, slotSize: 65536 });
      strayRing.receiveErrors(s.fd, onQueuedError);
    },
    onReadable(s) {
      strayRing ??= createRecvRing({ slots: 16, slotSize: 65536 });
      for (let n = receiveStrays(s); n > 0; n = receiveStrays(s)) {
        for (let i = 0; i < n; i++) {
          const from = strayRing.source(i);
          if (options.onReceive && from) options.onReceive({ src: from, dst: s.source, payload: strayRing.payload(i) });
          else countDrop(stats, "stray");
        }
      }
    },
    onWritable: (s) => engine.flush(s),
    onRecovered: (code) => countError(stats, code),
    onClose: (s) => engine.forget(s),
  });

  const engine = createQueuedTransport<SourceSocket>({
    kind: "bindsrc",
    label: "bindsrc transport",
    stats,
    queueLimit: options.queueLimit ?? 1024,
    closeTimeoutMs: options.closeTimeoutMs ?? 2000,
    // Records are mostly shared (a remote's, a sender's): identity settles most comparisons.
    sameLane: (a, b) => a.src === b.src || (a.src.port === b.src.port && sameIp(a.src.ip, b.src.ip)),
    laneFor: (d) => cache.acquire(d.src, Date.now()),
    dropReasonFor: (e) => (e.code === "EADDRINUSE" ? "address-in-use" : "send-error"),
    emit,
    watchWritable: (s, on) => cache.setWaiting(s, on),
    release: () => cache.close(),
  });
  return { ...engine.transport, kind: "bindsrc", sockets: cache.stats };
}
