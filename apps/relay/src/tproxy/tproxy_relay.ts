/**
 * The transparent UDP relay: TPROXY listeners (IPv4 and IPv6) whose datagrams go upstream through
 * their client's session socket (client_path.ts), and replies read from session sockets that go back
 * to the client through the chosen transport with the remote's own address and port as source
 * (reply_path.ts). This file opens the sockets and wires the two paths; it handles no datagram.
 * @module
 */
import { errnoName, formatSocketAddress, type SocketAddress } from "@anysrc/core";
import {
  bindSocket,
  closeFd,
  configureUdpSocket,
  createRecvRing,
  enableUdpGro,
  getPoller,
  openUdpSocket,
  READABLE,
  receiveBufferSize,
  setInheritable,
  socketDropCount,
  trimAfterBursts,
  type UdpSocketOptions,
} from "@anysrc/sys";
import { createIpFieldPolicy, type IpFieldPolicy } from "../ip_field_policy.ts";
import type { Outbound } from "../outbound.ts";
import { countKernelDrops, countRelayError, type RelayCounters } from "../relay_stats.ts";
import { type ClientPath, type Listener, readClients, relayStray } from "./client_path.ts";
import { createRemoteRecords } from "./remote_records.ts";
import { createReplyPath, flushReplies, readReplies, type ReplyPath } from "./reply_path.ts";
import { createSessionTable, type SessionTable } from "./session_table.ts";
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
  /**
   * Listening sockets opened and bound by a supervisor (`--workers`), one per `listen` address in
   * order: read from instead of opening new ones; their options are set again as this relay needs.
   */
  readonly inheritedListeners?: readonly number[];
}

/** Default receive buffer of the TPROXY listeners: a main-thread pause of ~0.2 s (GC, a burst of new sessions) must not overflow it. */
export const DEFAULT_LISTENER_BUFFER = 16 << 20;
/**
 * Default receive buffer of each upstream socket. The kernel default (212 992 B) holds ~90 datagrams
 * of 1200 B (each costs its skb truesize, ~2.3 KiB): one client with 256 in flight overflowed it
 * while the relay was busy elsewhere. A limit, not an allocation: idle sessions cost nothing.
 */
export const DEFAULT_UPSTREAM_BUFFER = 4 << 20;

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
 * @example const relay = startTproxyRelay({ listen, idleTimeoutMs: 120_000, maxSessions: 65536, nat: "full", outbound, counters, … });
 */
export function startTproxyRelay(o: TproxyRelayOptions): TproxyRelay {
  const c = o.counters;
  const opened = o.ipFields ?? createIpFieldPolicy();
  const poller = getPoller();
  const remote = createRemoteRecords();
  const restricted = o.nat === "restricted";
  const replies = createReplyPath(createRecvRing({ slots: 32, slotSize: 65536 }), { counters: c, outbound: o.outbound, remote, restricted, fields: opened });
  const sessions = openSessionTable(o, opened, replies);
  const clientRing = createRecvRing({ slots: 32, slotSize: 65536 });
  const upstream = createUpstreamBatch(
    { slots: clientRing.slots, restricted, offload: o.offload, segmentMtu: 1500, onOffloadFallback: o.onOffloadFallback },
    c,
  );
  const clients: ClientPath = { ring: clientRing, counters: c, sessions, remote, upstream, restricted, fields: opened };
  // Replies gathered across the sessions ready in one poll round reach the transport together.
  const stopFlushing = poller.afterRound(() => flushReplies(replies));
  const listeners = openListeners(o, opened, clients, sessions);
  // Opening and closing sessions is what allocates and frees: once a burst of them settles, what
  // the runtime freed goes back to the kernel (on Deno and Node ~3.5 MiB after 10 000 new sessions).
  const stopTrimming = trimAfterBursts(() => c.sessionsCreated + c.sessionsExpired + c.sessionsEvicted);
  // A socket can only overflow while datagrams sit in it, and those are read later (lastActive):
  // the sessions read from since the last refresh are the ones whose count can have moved.
  let refreshedAt = 0;

  return {
    fromClient: (client, destination, payload) => relayStray(clients, client, destination, payload),
    stopListening() {
      for (const l of listeners.splice(0)) {
        poller.remove(l.fd);
        // What the kernel already queued for us was accepted: relay it before closing.
        readClients(0, l);
        countKernelDrops(c, "listener", l, socketDropCount(l.fd));
        closeFd(l.fd);
      }
    },
    refreshKernelDrops(all) {
      for (const l of listeners) countKernelDrops(c, "listener", l, socketDropCount(l.fd));
      const since = all ? -Infinity : refreshedAt;
      refreshedAt = Date.now();
      sessions.forEach((s) => {
        if (s.lastActive >= since) countKernelDrops(c, "upstream", s, socketDropCount(s.fd));
      });
    },
    listenerBufferGranted: listeners[0] ? receiveBufferSize(listeners[0].fd) / 2 : 0,
    reconfigure(r) {
      if (r.ipFields.readsClass && !opened.readsClass) {
        return "reading the traffic class (--dscp/--ecn keep) needs a restart: the sockets were opened without IP_RECVTOS";
      }
      if (r.ipFields.readsTtl && !opened.readsTtl) return "--ttl keep needs a restart: the sockets were opened without IP_RECVTTL";
      clients.fields = replies.fields = r.ipFields;
      sessions.setLimits(r.idleTimeoutMs, r.maxSessions);
      c.sessions = sessions.size;
      return undefined;
    },
    close() {
      this.stopListening();
      flushReplies(replies);
      stopFlushing();
      stopTrimming();
      sessions.close();
      c.sessions = 0;
    },
    sessions,
  };
}

/** The relay's sessions, each upstream socket registered with {@link readReplies}. */
function openSessionTable(o: TproxyRelayOptions, fields: IpFieldPolicy, replies: ReplyPath): SessionTable {
  const c = o.counters;
  const sessions: SessionTable = createSessionTable({
    idleTimeoutMs: o.idleTimeoutMs,
    maxSessions: o.maxSessions,
    ...(o.mark !== undefined ? { mark: o.mark } : {}),
    receiveBuffer: o.upstreamBuffer,
    onUpstreamReadable: readReplies,
    replies,
    // Drops after the last datagram read show only in SO_MEMINFO.
    onClosing: (s) => countKernelDrops(c, "upstream", s, socketDropCount(s.fd)),
    onExpired: () => {
      c.sessionsExpired++;
      c.sessions = sessions.size;
    },
    onEvicted: () => c.sessionsEvicted++,
    onOutOfDescriptors: (code) => countRelayError(c, code),
    gro: o.offload,
    readClass: fields.readsClass,
    readTtl: fields.readsTtl,
    onGroRefused: (code) => {
      c.offloadFallbacks++;
      o.onOffloadFallback(`upstream sockets: UDP_GRO refused (${code}); reading datagrams one by one`);
    },
  });
  return sessions;
}

/**
 * The options of a TPROXY listener of `family`: transparent, with each datagram's original
 * destination, its kernel drop count and what `fields` must read of its IP header.
 * @example openUdpSocket(tproxyListenerOptions(4, 16 << 20, createIpFieldPolicy()))
 */
export function tproxyListenerOptions(family: 4 | 6, receiveBuffer: number, fields: IpFieldPolicy): UdpSocketOptions {
  return {
    family,
    transparent: true,
    receiveOriginalDestination: true,
    reuseAddress: true,
    receiveBuffer,
    receiveDropCount: true,
    receiveTrafficClass: fields.readsClass,
    receiveHopLimit: fields.readsTtl,
  };
}

/** A TPROXY listener per address (or inherited), registered with {@link readClients}; on a failure none is left open. */
function openListeners(o: TproxyRelayOptions, fields: IpFieldPolicy, relay: ClientPath, sessions: SessionTable): Listener[] {
  const poller = getPoller();
  const listeners: Listener[] = [];
  o.listen.forEach((addr, i) => {
    const options = tproxyListenerOptions(addr.family, o.listenerBuffer, fields);
    const inherited = o.inheritedListeners?.[i];
    const fd = inherited ?? openUdpSocket(options);
    try {
      if (inherited === undefined) bindSocket(fd, addr);
      else {
        configureUdpSocket(fd, options);
        setInheritable(fd, false);
      }
      const e = o.offload ? enableUdpGro(fd) : 0;
      if (e !== 0) {
        o.counters.offloadFallbacks++;
        o.onOffloadFallback(`listener ${formatSocketAddress(addr)}: UDP_GRO refused (${errnoName(e)}); reading datagrams one by one`);
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
    const l: Listener = { fd, drops: 0, relay };
    poller.add(fd, READABLE, readClients, l);
    listeners.push(l);
  });
  return listeners;
}
