/**
 * A client datagram's way upstream, client → remote: the poller reports a TPROXY listener readable
 * ({@link readClients}, registered with the listener as context); each datagram read with its
 * original destination finds its client's session (looked up by the raw source sockaddr; opened by
 * {@link openSession} on first contact) and joins the UpstreamBatch, which sends one sendmmsg per
 * session straight from the receive ring. Datagrams the kernel hands a bound source socket instead
 * (bindsrc) come in through {@link relayStray}: the same sessions, one sendto.
 * @module
 */
import { addressKey, isUnicast, sameIp, sameSocketAddress, type SocketAddress, SystemError } from "@anysrc/core";
import { decodeSockaddr, getPoller, READ_BATCHES_PER_DISPATCH, type RecvRing, sendTo, sockaddrIs, sockaddrKey } from "@anysrc/sys";
import type { IpFieldPolicy } from "../ip_field_policy.ts";
import { countCoalesced, countKernelDrops, countRelayDrop, type DropWatch, type RelayCounters } from "../relay_stats.ts";
import type { RemoteRecords } from "./remote_records.ts";
import type { Session, SessionTable } from "./session_table.ts";
import type { UpstreamBatch } from "./upstream_batch.ts";

/** One relay's client side: what the functions here work with. */
export interface ClientPath {
  readonly ring: RecvRing;
  readonly counters: RelayCounters;
  readonly sessions: SessionTable;
  readonly remote: RemoteRecords;
  readonly upstream: UpstreamBatch;
  /** `--nat restricted`: remember the remotes each client sends to. */
  readonly restricted: boolean;
  /** What client datagrams carry upstream (a reload may replace it). */
  fields: IpFieldPolicy;
}

/** A TPROXY listener, its kernel drop count as last seen, and its relay. */
export interface Listener extends DropWatch {
  readonly fd: number;
  readonly relay: ClientPath;
}

/**
 * A new session for `client` (its source sockaddr's key `key`), counted. Undefined, with its
 * `datagrams` counted as dropped, when no upstream socket can be had, or when the "client" is this
 * host sending to itself — one of our upstream sockets relaying a datagram that was addressed to the
 * relay (a local address picks itself as source).
 */
export function openSession(p: ClientPath, client: SocketAddress, key: number, dstIp: Uint8Array, datagrams: number, now: number): Session | undefined {
  if (sameIp(client.ip, dstIp)) {
    countRelayDrop(p.counters, "loop", datagrams);
    return undefined;
  }
  try {
    const s = p.sessions.create(client, key, now);
    p.counters.sessionsCreated++;
    return s;
  } catch (e) {
    if (!(e instanceof SystemError)) throw e;
    countRelayDrop(p.counters, "session-error", datagrams);
    return undefined;
  }
}

/** The poller's handler for a readable listener; also called once more before it closes. */
export function readClients(_events: number, l: Listener): void {
  const { ring, counters: c, upstream } = l.relay;
  // A short batch means the socket is drained: skip the recvmmsg that would only say EAGAIN. If
  // more arrived meanwhile, that arrival is a new edge and the poller reports it. A flood that never
  // drains gets READ_BATCHES_PER_DISPATCH batches, then waits for the next round like everyone else.
  for (let n = ring.slots, batches = 0; n === ring.slots; batches++) {
    if (batches === READ_BATCHES_PER_DISPATCH) {
      getPoller().again(l.fd);
      break;
    }
    n = ring.receive(l.fd);
    if (n > 0) countKernelDrops(c, "listener", l, ring.dropCount(n - 1));
    const now = Date.now();
    let gatheredFrom = 0;
    for (let i = 0; i < n; i++) {
      // Before a new session: what is gathered went first (making room may close one of them).
      if (takeClientDatagram(l.relay, i, gatheredFrom, now)) gatheredFrom = i;
    }
    upstream.flush(ring, gatheredFrom, n);
  }
  c.sessions = l.relay.sessions.size;
}

/** Slot `i`: checked, its session found or opened, added to the upstream batch; true when it was a new client. */
function takeClientDatagram(p: ClientPath, i: number, gatheredFrom: number, now: number): boolean {
  const { ring, counters: c } = p;
  const memory = ring.memory;
  // A coalesced read (UDP_GRO) holds several datagrams of one client to one destination.
  const datagrams = ring.datagramCount(i);
  c.received += datagrams;
  countCoalesced(c, datagrams);
  const dstAt = ring.originalDestinationOffset(i);
  const ttl = p.fields.ttlOf(ring.hopLimit(i));
  const refused = ring.truncated(i) ? "truncated" : dstAt < 0 ? "no-original-destination" : ttl === 0 ? "ttl-expired" : undefined;
  if (refused) {
    countRelayDrop(c, refused, datagrams);
    return false;
  }
  // Session by the raw source sockaddr: no address record is decoded unless it is new.
  const srcAt = ring.sourceOffset(i);
  const key = sockaddrKey(memory, srcAt);
  let s = p.sessions.lookup(key);
  const known = s !== undefined && sockaddrIs(memory, srcAt, s);
  // The client's usual remote, compared in place: no key hash or lookup for it.
  let dst: SocketAddress;
  let dstKey: number;
  if (known && s!.remote !== undefined && sockaddrIs(memory, dstAt, s!.remote)) {
    dst = s!.remote;
    dstKey = s!.remoteKey;
  } else {
    dstKey = sockaddrKey(memory, dstAt);
    dst = p.remote.at(memory, dstAt, dstKey);
    // Only a destination some host can own may become a reply's source; checked before any session exists.
    if (!isUnicast(dst.ip)) {
      countRelayDrop(c, "bad-destination", datagrams);
      return false;
    }
  }
  if (known) p.sessions.touch(s!, now);
  else {
    p.upstream.flush(ring, gatheredFrom, i);
    s = openSession(p, decodeSockaddr(memory, srcAt)!, key, dst.ip, datagrams, now);
    if (!s) return true;
  }
  s!.remote = dst;
  s!.remoteKey = dstKey;
  p.upstream.add(s!, i, dstAt, dstKey, p.fields.classOf(ring.trafficClass(i)), ttl);
  return !known;
}

/**
 * A datagram the kernel gave a bound source socket (bindsrc) instead of the listener: client
 * traffic to `destination`, relayed upstream with one sendto.
 */
export function relayStray(p: ClientPath, client: SocketAddress, destination: SocketAddress, payload: Uint8Array): void {
  const c = p.counters;
  c.received++;
  if (!isUnicast(destination.ip)) return countRelayDrop(c, "bad-destination");
  const now = Date.now();
  const key = addressKey(client);
  let s = p.sessions.lookup(key);
  if (s && sameSocketAddress(s, client)) p.sessions.touch(s, now);
  else s = openSession(p, client, key, destination.ip, 1, now);
  c.sessions = p.sessions.size;
  if (!s) return;
  const dstKey = addressKey(destination);
  try {
    if (!sendTo(s.fd, payload, p.remote.of(destination, dstKey))) return countRelayDrop(c, "upstream-busy");
    c.forwarded++;
    if (p.restricted) (s.contacted ??= new Set()).add(dstKey);
  } catch (e) {
    if (!(e instanceof SystemError)) throw e;
    countRelayDrop(c, "upstream-error");
  }
}
