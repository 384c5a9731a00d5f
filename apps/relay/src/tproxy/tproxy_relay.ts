/**
 * The transparent UDP relay. Client datagrams arrive on TPROXY listeners (IPv4 and IPv6) with their
 * original destination; each goes upstream through the client's session socket. Replies read from
 * session sockets go back to the client through the chosen transport with the remote's own address
 * and port as source. Follow one datagram: `onListenerReadable` → UpstreamBatch (one sendmmsg per
 * session); `onUpstreamReadable` → `flushReplies` at the poll round's end → Outbound.emit →
 * transport → kernel.
 * @module
 */
import { addressKey as keyOf, errnoName, formatSocketAddress, isUnicast, sameIp, sameSocketAddress, type SocketAddress, SystemError } from "@anysrc/core";
import {
  bindSocket,
  closeFd,
  createRecvRing,
  decodeSockaddr,
  enableUdpGro,
  getPoller,
  openUdpSocket,
  type QueuedError,
  queuedErrorKind,
  READABLE,
  Ready,
  receiveBufferSize,
  type RecvRing,
  sendTo,
  sockaddrIs,
  sockaddrKey,
  socketDropCount,
} from "@anysrc/sys";
import { createDatagramBatch } from "../datagram_batch.ts";
import { createIpFieldPolicy, type IpFieldPolicy } from "../ip_field_policy.ts";
import type { Outbound } from "../outbound.ts";
import { countCoalesced, countIcmpErrorKind, countKernelDrops, countRelayDrop, countRelayError, type DropWatch, type RelayCounters } from "../relay_stats.ts";
import { createRemoteRecords, createSessionTable, type Session, type SessionTable } from "./session_table.ts";
import { createUpstreamBatch } from "./upstream_batch.ts";

/** Settings of the relay. */
export interface TproxyRelayOptions {
  /** Addresses to listen on (port included), IPv4 and/or IPv6. */
  readonly listen: readonly SocketAddress[];
  readonly idleTimeoutMs: number;
  readonly maxSessions: number;
  readonly mark?: number;
  /** "full": replies from any remote (endpoint-independent filtering); "restricted": only from remotes the client sent to. */
  readonly nat: "full" | "restricted";
  readonly outbound: Outbound;
  readonly counters: RelayCounters;
  /** Receive buffers in bytes (SO_RCVBUFFORCE when privileged, else capped by net.core.rmem_max). */
  readonly listenerBuffer: number;
  readonly upstreamBuffer: number;
  /** UDP_GRO on listeners and upstream sockets, GSO sends upstream (`--offload on`). */
  readonly offload: boolean;
  /** Told once per kind of refusal when the kernel refuses an offload. */
  readonly onOffloadFallback: (reason: string) => void;
  /** What each direction's datagrams carry in their IP header (`--dscp`, `--ecn`, `--ttl`); default: the class kept. */
  readonly ipFields?: IpFieldPolicy;
}

/** Default receive buffer of the TPROXY listeners: a main-thread pause of ~0.2 s (GC, a burst of new sessions) must not overflow it. */
export const DEFAULT_LISTENER_BUFFER = 16 << 20;
/**
 * Default receive buffer of each upstream socket. The kernel default (212 992 B) holds ~90 datagrams
 * of 1200 B (each costs its skb truesize, ~2.3 KiB): one client with 256 in flight overflowed it
 * while the relay was busy elsewhere. A limit, not an allocation: idle sessions cost nothing.
 */
export const DEFAULT_UPSTREAM_BUFFER = 4 << 20;

/** A TPROXY listener and its kernel drop count as last seen. */
interface Listener extends DropWatch {
  readonly fd: number;
}

/** A running relay. */
export interface TproxyRelay {
  /** Datagrams sent to a bound source socket by the kernel (bindsrc): treat as client traffic. */
  fromClient(client: SocketAddress, destination: SocketAddress, payload: Uint8Array): void;
  /** Stop reading from clients (listeners closed); sessions keep draining replies. */
  stopListening(): void;
  /** Close every session socket. */
  close(): void;
  /**
   * Bring kernel drop counts up to date (SO_MEMINFO) before stats are printed or served: the
   * listeners' and those of sessions read from since the last refresh (SO_RXQ_OVFL only tells of a
   * drop with the next datagram); with `all` every session's (one getsockopt each: the final counters).
   */
  refreshKernelDrops(all: boolean): void;
  /**
   * The receive buffer the kernel granted the first listener, in the units asked (SO_RCVBUF reads
   * back double): below `listenerBuffer` when unprivileged and capped by net.core.rmem_max.
   */
  readonly listenerBufferGranted: number;
  readonly sessions: SessionTable;
  /**
   * Settings a reload may change while running: the session limits, and what relayed datagrams
   * carry in their IP header. A policy that must read what the sockets were not opened to report
   * (`--ttl keep` on a relay started without it) needs a restart: returns why, changing nothing.
   */
  reconfigure(r: { readonly idleTimeoutMs: number; readonly maxSessions: number; readonly ipFields: IpFieldPolicy }): string | undefined;
}

/**
 * Start listening and relaying.
 * @example const relay = startTproxyRelay({ listen, idleTimeoutMs: 120_000, maxSessions: 65536, nat: "full", outbound, counters });
 */
export function startTproxyRelay(o: TproxyRelayOptions): TproxyRelay {
  const c = o.counters;
  const opened = o.ipFields ?? createIpFieldPolicy();
  let fields = opened;
  const poller = getPoller();
  const clientRing = createRecvRing({ slots: 32, slotSize: 65536 });
  const replyRing = createRecvRing({ slots: 32, slotSize: 65536 });
  // The replies of a poll round, in reused records: the reply path allocates only the payload views.
  const replies = createDatagramBatch();

  const sessions = createSessionTable({
    idleTimeoutMs: o.idleTimeoutMs,
    maxSessions: o.maxSessions,
    ...(o.mark !== undefined ? { mark: o.mark } : {}),
    receiveBuffer: o.upstreamBuffer,
    onUpstreamReadable: (s, events) => onUpstreamReadable(s, replyRing, events),
    // Drops after the last datagram read show only in SO_MEMINFO.
    onClosing: (s) => countKernelDrops(c, "upstream", s, socketDropCount(s.fd)),
    onExpired: () => {
      c.sessionsExpired++;
      c.sessions = sessions.size;
    },
    onEvicted: () => c.sessionsEvicted++,
    onOutOfDescriptors: (code) => countRelayError(c, code),
    gro: o.offload,
    readClass: opened.readsClass,
    readTtl: opened.readsTtl,
    onGroRefused: (code) => {
      c.offloadFallbacks++;
      o.onOffloadFallback(`upstream sockets: UDP_GRO refused (${code}); reading datagrams one by one`);
    },
  });

  const remote = createRemoteRecords();

  const relayFromClient = (s: Session, dst: SocketAddress, dstKey: number, payload: Uint8Array) => {
    try {
      if (sendTo(s.fd, payload, dst)) {
        c.forwarded++;
        if (o.nat === "restricted") (s.contacted ??= new Set()).add(dstKey);
      } else countRelayDrop(c, "upstream-busy");
    } catch (e) {
      if (!(e instanceof SystemError)) throw e;
      countRelayDrop(c, "upstream-error");
    }
  };

  /**
   * A new session, counted; undefined (and counted as a drop) when no upstream socket can be had, or
   * when the "client" is this host sending to itself — one of our upstream sockets relaying a
   * datagram that was addressed to the relay (a local address picks itself as source).
   */
  const createSession = (client: SocketAddress, key: number, now: number, dstIp: Uint8Array, datagrams = 1): Session | undefined => {
    if (sameIp(client.ip, dstIp)) {
      countRelayDrop(c, "loop", datagrams);
      return undefined;
    }
    try {
      const s = sessions.create(client, key, now);
      c.sessionsCreated++;
      return s;
    } catch (e) {
      if (!(e instanceof SystemError)) throw e;
      countRelayDrop(c, "session-error", datagrams);
      return undefined;
    }
  };

  const upstream = createUpstreamBatch(
    { slots: clientRing.slots, restricted: o.nat === "restricted", offload: o.offload, segmentMtu: 1500, onOffloadFallback: o.onOffloadFallback },
    c,
  );

  const onListenerReadable = (l: Listener, ring: RecvRing) => {
    const memory = ring.memory;
    const fd = l.fd;
    // A short batch means the socket is drained: skip the recvmmsg that would only say EAGAIN. If
    // more arrived meanwhile, that arrival is a new edge and the poller reports it.
    for (let n = ring.slots; n === ring.slots;) {
      n = ring.receive(fd);
      if (n > 0) countKernelDrops(c, "listener", l, ring.dropCount(n - 1));
      const now = Date.now();
      let gatheredFrom = 0;
      for (let i = 0; i < n; i++) {
        // A coalesced read (UDP_GRO) holds several datagrams of one client to one destination.
        const datagrams = ring.datagramCount(i);
        c.received += datagrams;
        countCoalesced(c, datagrams);
        if (ring.truncated(i)) {
          countRelayDrop(c, "truncated", datagrams);
          continue;
        }
        const dstAt = ring.originalDestinationOffset(i);
        if (dstAt < 0) {
          countRelayDrop(c, "no-original-destination", datagrams);
          continue;
        }
        const ttl = fields.ttlOf(ring.hopLimit(i));
        if (ttl === 0) {
          countRelayDrop(c, "ttl-expired", datagrams);
          continue;
        }
        // Session by the raw source sockaddr: no address record is decoded unless it is new.
        const srcAt = ring.sourceOffset(i);
        const key = sockaddrKey(memory, srcAt);
        let s = sessions.lookup(key);
        const known = s !== undefined && sockaddrIs(memory, srcAt, s);
        // The client's usual remote, compared in place: no key hash or lookup for it.
        let dst: SocketAddress;
        let dstKey: number;
        if (known && s!.remote !== undefined && sockaddrIs(memory, dstAt, s!.remote)) {
          dst = s!.remote;
          dstKey = s!.remoteKey;
        } else {
          dstKey = sockaddrKey(memory, dstAt);
          dst = remote.at(memory, dstAt, dstKey);
          // Only a destination some host can own may become a reply's source; checked before any session exists.
          if (!isUnicast(dst.ip)) {
            countRelayDrop(c, "bad-destination", datagrams);
            continue;
          }
        }
        if (known) sessions.touch(s!, now);
        else {
          // What is gathered goes first: making room for a new session may close one of them.
          upstream.flush(ring, gatheredFrom, i);
          gatheredFrom = i;
          s = createSession(decodeSockaddr(memory, srcAt)!, key, now, dst.ip, datagrams);
          if (!s) continue;
        }
        s = s!;
        s.remote = dst;
        s.remoteKey = dstKey;
        upstream.add(s, i, dstAt, dstKey, fields.classOf(ring.trafficClass(i)), ttl);
      }
      upstream.flush(ring, gatheredFrom, n);
    }
    c.sessions = sessions.size;
  };

  // Replies gather in the reply ring across the sessions ready in one poll round and reach the
  // transport together when the round ends (or the ring is full): with many busy sessions, one
  // sendmmsg carries many sessions' replies instead of one call per session.
  let gathered = 0;
  const flushReplies = () => {
    gathered = 0;
    if (replies.list.length === 0) return;
    c.replies += o.outbound.emit(replies.list, "transport-refused");
    replies.clear();
  };
  const stopFlushing = poller.afterRound(flushReplies);

  const onQueuedError = (e: QueuedError) => countIcmpErrorKind(c, queuedErrorKind(e));

  function onUpstreamReadable(s: Session, ring: RecvRing, events: number): void {
    const memory = ring.memory;
    // ICMP errors (IP_RECVERR) raise EPOLLERR; drain the error queue so the fd does not stay ready.
    // Reading it reuses the ring's slots: what is gathered goes first.
    if (events & Ready.error) {
      flushReplies();
      c.icmpErrors += ring.receiveErrors(s.fd, onQueuedError);
    }
    for (;;) {
      if (gathered === ring.slots) flushReplies();
      const want = ring.slots - gathered;
      let n: number;
      try {
        n = ring.receive(s.fd, gathered, want);
      } catch (e) {
        if (!(e instanceof SystemError)) throw e;
        // A pending ICMP error (port unreachable → ECONNREFUSED, …): counted; the session lives on.
        c.icmpErrors++;
        flushReplies();
        ring.receiveErrors(s.fd, onQueuedError);
        continue;
      }
      if (n === 0) break;
      const end = gathered + n;
      countKernelDrops(c, "upstream", s, ring.dropCount(end - 1));
      for (let i = gathered; i < end; i++) {
        const srcAt = ring.sourceOffset(i);
        // A coalesced read (UDP_GRO): several replies of one remote, each a view of the slot.
        const datagrams = ring.datagramCount(i);
        c.repliesReceived += datagrams;
        countCoalesced(c, datagrams);
        // Mostly the remote the client last sent to: compared in place before any hashing.
        const last = s.remote;
        const hit = last !== undefined && sockaddrIs(memory, srcAt, last);
        const remoteKey = hit ? s.remoteKey : sockaddrKey(memory, srcAt);
        if (o.nat === "restricted" && !s.contacted?.has(remoteKey)) {
          countRelayDrop(c, "nat-restricted", datagrams);
          continue;
        }
        const ttl = fields.ttlOf(ring.hopLimit(i));
        if (ttl === 0) {
          countRelayDrop(c, "reply-ttl-expired", datagrams);
          continue;
        }
        const tos = fields.classOf(ring.trafficClass(i));
        const from = hit ? last : remote.at(memory, srcAt, remoteKey);
        for (let k = 0; k < datagrams; k++) replies.add(from, s, ring.datagram(i, k), tos, ttl);
      }
      gathered = end;
      s.lastActive = Date.now();
      // A short batch means drained (anything newer is a new edge).
      if (n < want) break;
    }
  }

  const listeners: Listener[] = [];
  for (const addr of o.listen) {
    const fd = openUdpSocket({
      family: addr.family,
      transparent: true,
      receiveOriginalDestination: true,
      reuseAddress: true,
      receiveBuffer: o.listenerBuffer,
      receiveDropCount: true,
      receiveTrafficClass: opened.readsClass,
      receiveHopLimit: opened.readsTtl,
    });
    try {
      bindSocket(fd, addr);
      if (o.offload) {
        const e = enableUdpGro(fd);
        if (e !== 0) {
          c.offloadFallbacks++;
          o.onOffloadFallback(`listener ${formatSocketAddress(addr)}: UDP_GRO refused (${errnoName(e)}); reading datagrams one by one`);
        }
      }
    } catch (e) {
      closeFd(fd);
      for (const l of listeners) {
        poller.remove(l.fd);
        closeFd(l.fd);
      }
      sessions.close();
      throw e;
    }
    const l: Listener = { fd, drops: 0 };
    poller.add(fd, READABLE, onListener, l);
    listeners.push(l);
  }
  function onListener(_events: number, l: Listener): void {
    onListenerReadable(l, clientRing);
  }
  // A socket can only overflow while datagrams sit in it, and those are read later (lastActive):
  // the sessions read from since the last refresh are the ones whose count can have moved.
  let refreshedAt = 0;
  const refreshKernelDrops = (all: boolean) => {
    for (const l of listeners) countKernelDrops(c, "listener", l, socketDropCount(l.fd));
    const since = all ? -Infinity : refreshedAt;
    refreshedAt = Date.now();
    sessions.forEach((s) => {
      if (s.lastActive >= since) countKernelDrops(c, "upstream", s, socketDropCount(s.fd));
    });
  };

  return {
    fromClient(client, destination, payload) {
      const now = Date.now();
      const key = keyOf(client);
      c.received++;
      if (!isUnicast(destination.ip)) {
        countRelayDrop(c, "bad-destination");
        return;
      }
      let s = sessions.lookup(key);
      if (s && sameSocketAddress(s, client)) sessions.touch(s, now);
      else {
        s = createSession(client, key, now, destination.ip);
        if (!s) return;
      }
      const dstKey = keyOf(destination);
      relayFromClient(s, remote.of(destination, dstKey), dstKey, payload);
      c.sessions = sessions.size;
    },
    stopListening() {
      for (const l of listeners.splice(0)) {
        poller.remove(l.fd);
        // What the kernel already queued for us was accepted: relay it before closing.
        onListenerReadable(l, clientRing);
        countKernelDrops(c, "listener", l, socketDropCount(l.fd));
        closeFd(l.fd);
      }
    },
    refreshKernelDrops,
    listenerBufferGranted: listeners[0] ? receiveBufferSize(listeners[0].fd) / 2 : 0,
    reconfigure(r) {
      if (r.ipFields.readsClass && !opened.readsClass) {
        return "reading the traffic class (--dscp/--ecn keep) needs a restart: the sockets were opened without IP_RECVTOS";
      }
      if (r.ipFields.readsTtl && !opened.readsTtl) return "--ttl keep needs a restart: the sockets were opened without IP_RECVTTL";
      fields = r.ipFields;
      sessions.setLimits(r.idleTimeoutMs, r.maxSessions);
      c.sessions = sessions.size;
      return undefined;
    },
    close() {
      this.stopListening();
      flushReplies();
      stopFlushing();
      sessions.close();
      c.sessions = 0;
    },
    sessions,
  };
}
