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
  createSendQueue,
  createTransportStats,
  type Datagram,
  errnoName,
  formatSocketAddress,
  gsoRunLength,
  sameIp,
  sendOneThrough,
  type SendQueue,
  SystemError,
  type Transport,
  TransportError,
  type TransportStats,
  UDP_GSO_MAX_SEGMENTS,
  udpHeadersLength,
  validateDatagram,
} from "@anysrc/core";
import { createDrainWaiter, createRecvRing, createSendRing, isPendingIcmpError, linux, type QueuedError, queuedErrorKind, type RecvRing } from "@anysrc/sys";
import { type BindSourceCacheStats, createBindSourceCache, type SourceSocket } from "./bind_source_cache.ts";

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
  const stats: TransportStats = createTransportStats();
  const ring = createSendRing({ slots: batch, headerSize: 8, iovecs: UDP_GSO_MAX_SEGMENTS });
  const offload = options.offload !== false;
  const segmentMtu = options.segmentMtu ?? 1500;
  // Datagrams in each message of the ring: 1, or a GSO run's length.
  const perMessage = new Int32Array(batch);
  let told = false;
  const queues = new Map<number, SendQueue>();
  let strayRing: RecvRing | undefined;
  let closed = false;
  const drain = createDrainWaiter();

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
    onWritable(s) {
      const q = queues.get(s.fd);
      while (q && q.length > 0) {
        const chunk = q.head(batch);
        const done = emitRun(s, chunk, 0, chunk.length);
        q.drop(done);
        if (done < chunk.length) break;
      }
      if (!q || q.length === 0) {
        queues.delete(s.fd);
        cache.setWaiting(s, false);
      }
      updateQueued();
      if (queues.size === 0) drain.drained();
    },
    onRecovered: (code) => countError(stats, code),
    onClose(s) {
      const q = queues.get(s.fd);
      if (q) countDrop(stats, "closed", q.clear());
      queues.delete(s.fd);
      updateQueued();
    },
  });

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

  const updateQueued = () => {
    let n = 0;
    for (const q of queues.values()) n += q.length;
    stats.queued = n;
  };

  /** sendmmsg `ds[from, to)` (one source) on `s`; returns the index of the first datagram not taken. */
  const emitRun = (s: SourceSocket, ds: readonly Datagram[], from: number, to: number): number => {
    let i = from;
    let retried = false;
    while (i < to) {
      let m = 0;
      let j = i;
      while (j < to && m < batch) {
        const d = ds[j]!;
        const n = offload && s.gso ? gsoRunLength(ds, j, to, segmentMtu - udpHeadersLength(d.src.family)) : 1;
        ring.setDestination(m, d.dst);
        if (n === 1) ring.setSingle(m, ring.addressOf(d.payload), d.payload.length);
        else {
          for (let k = 0; k < n; k++) {
            const p = ds[j + k]!.payload;
            ring.setIovec(m, k, ring.addressOf(p), p.length);
          }
          ring.setIovecCount(m, n);
        }
        ring.setSegmentSize(m, n === 1 ? 0 : d.payload.length);
        // The datagram's own class and TTL as cmsgs (a run shares them); the socket's default TOS is 0.
        ring.setIpFields(m, d.src.family, d.tos ? d.tos : -1, d.ttl ?? -1);
        perMessage[m++] = n;
        j += n;
      }
      const sent = ring.send(s.fd, 0, m);
      if (sent > 0) {
        retried = false;
        stats.batches++;
        for (let k = 0; k < sent; k++) {
          const n = perMessage[k]!;
          stats.sent += n;
          if (n > 1) stats.coalesced += n;
          for (let x = 0; x < n; x++) stats.bytes += ds[i + x]!.payload.length;
          i += n;
        }
        continue;
      }
      const e = -sent;
      countError(stats, errnoName(e));
      if (e === linux.EAGAIN || e === linux.ENOBUFS) return i;
      if (perMessage[0]! > 1) {
        // The kernel refused the GSO send (EMSGSIZE: a segment over the route MTU; EINVAL: an old kernel; EIO:
        // no checksum offload on the way out): this socket sends plainly from now on; nothing was lost.
        s.gso = false;
        stats.offloadFallbacks++;
        if (!told) {
          told = true;
          options.onOffloadFallback?.(`bindsrc: a GSO send from ${formatSocketAddress(s.source)} was refused (${errnoName(e)}); that socket sends plainly`);
        }
        continue;
      }
      // An ICMP error reported earlier (IP_RECVERR sets the socket's pending error) fails the next
      // send and is cleared by it: that datagram was not the cause, so it gets one more try.
      if (!retried && isPendingIcmpError(e)) {
        retried = true;
        continue;
      }
      retried = false;
      countDrop(stats, "send-error");
      i++;
    }
    return to;
  };

  const enqueue = (s: SourceSocket, ds: readonly Datagram[], from: number, to: number) => {
    let q = queues.get(s.fd);
    if (!q) {
      q = createSendQueue(options.queueLimit ?? 1024);
      queues.set(s.fd, q);
    }
    for (let k = from; k < to; k++) if (!q.push(ds[k]!)) countDrop(stats, "queue-full");
    cache.setWaiting(s, true);
    updateQueued();
  };

  // Per-batch scratch, reused: which datagrams have been taken, and one source's datagrams at a time.
  const taken: boolean[] = [];
  const group: Datagram[] = [];

  const sendBatch = (ds: readonly Datagram[]) => {
    if (closed) throw new TransportError("closed", "bindsrc transport is closed");
    for (const d of ds) validateDatagram(d);
    const now = Date.now();
    let firstError: SystemError | undefined;
    taken.length = ds.length;
    taken.fill(false);
    // One group per source (first-appearance order; order within a source kept): one sendmmsg each,
    // even when sources alternate datagram by datagram. Each group's socket is acquired just before
    // it is used, so an eviction (cap, or out of descriptors) can only close a socket already done with.
    for (let i = 0; i < ds.length; i++) {
      if (taken[i]) continue;
      const src = ds[i]!.src;
      group.length = 0;
      for (let j = i; j < ds.length; j++) {
        const other = ds[j]!.src;
        // Records are mostly shared (a remote's, a sender's): identity settles most comparisons.
        if (taken[j] || (other !== src && (other.port !== src.port || !sameIp(other.ip, src.ip)))) continue;
        group.push(ds[j]!);
        taken[j] = true;
      }
      let s: SourceSocket;
      try {
        s = cache.acquire(src, now);
      } catch (e) {
        if (!(e instanceof SystemError)) throw e;
        countError(stats, e.code);
        countDrop(stats, e.code === "EADDRINUSE" ? "address-in-use" : "send-error", group.length);
        firstError ??= e;
        continue;
      }
      if (queues.has(s.fd)) enqueue(s, group, 0, group.length);
      else {
        const done = emitRun(s, group, 0, group.length);
        if (done < group.length) enqueue(s, group, done, group.length);
      }
    }
    group.length = 0;
    if (firstError) throw firstError;
  };

  return {
    kind: "bindsrc",
    stats,
    sockets: cache.stats,
    send: sendOneThrough(sendBatch),
    sendBatch,
    async close() {
      if (closed) return;
      closed = true;
      await drain.wait(queues.size > 0, options.closeTimeoutMs ?? 2000);
      cache.close();
    },
  };
}
