/**
 * A reply's way back, remote → client: the poller reports a session's upstream socket readable
 * ({@link readReplies}, registered for every session with the session as context); its replies are
 * read into the relay's one reply ring, each given the remote's own address as source, and gathered
 * across every session ready in the poll round; at the round's end ({@link flushReplies}) they reach
 * the transport together — with many busy sessions, one sendmmsg carries many sessions' replies.
 * @module
 */
import { SystemError } from "@anysrc/core";
import { getPoller, type QueuedError, queuedErrorKind, READ_BATCHES_PER_DISPATCH, Ready, type RecvRing, sockaddrIs, sockaddrKey } from "@anysrc/sys";
import { createDatagramBatch, type DatagramBatch } from "../datagram_batch.ts";
import type { IpFieldPolicy } from "../ip_field_policy.ts";
import type { Outbound } from "../outbound.ts";
import { countCoalesced, countIcmpErrorKind, countKernelDrops, countRelayDrop, type RelayCounters } from "../relay_stats.ts";
import type { RemoteRecords } from "./remote_records.ts";
import type { Session } from "./session_table.ts";

/** One relay's reply side: what {@link readReplies} and {@link flushReplies} work with. */
export interface ReplyPath {
  readonly ring: RecvRing;
  /** The replies of this poll round, in reused records: the reply path allocates only payload views. */
  readonly batch: DatagramBatch;
  /** Slots of `ring` filled this round. */
  gathered: number;
  readonly counters: RelayCounters;
  readonly outbound: Outbound;
  readonly remote: RemoteRecords;
  /** `--nat restricted`: replies only from remotes the client sent to. */
  readonly restricted: boolean;
  /** What replies carry in their IP header (a reload may replace it). */
  fields: IpFieldPolicy;
  readonly onQueuedError: (e: QueuedError) => void;
}

/**
 * A reply path reading into `ring`.
 * @example const path = createReplyPath(createRecvRing({ slots: 32, slotSize: 65536 }), { counters, outbound, remote, restricted: false, fields });
 */
export function createReplyPath(
  ring: RecvRing,
  o: { counters: RelayCounters; outbound: Outbound; remote: RemoteRecords; restricted: boolean; fields: IpFieldPolicy },
): ReplyPath {
  const c = o.counters;
  return { ring, batch: createDatagramBatch(), gathered: 0, ...o, onQueuedError: (e) => countIcmpErrorKind(c, queuedErrorKind(e)) };
}

/** Hand what was gathered to the transport (at the poll round's end, or when the ring is full). */
export function flushReplies(p: ReplyPath): void {
  p.gathered = 0;
  if (p.batch.list.length === 0) return;
  p.counters.replies += p.outbound.emit(p.batch.list, "transport-refused");
  p.batch.clear();
}

/** The poller's handler for a readable (or erroring) upstream socket. */
export function readReplies(events: number, s: Session): void {
  const p = s.replies;
  const ring = p.ring;
  // ICMP errors (IP_RECVERR) raise EPOLLERR; drain the error queue so the fd does not stay ready.
  // Reading it reuses the ring's slots: what is gathered goes first.
  if (events & Ready.error) {
    flushReplies(p);
    p.counters.icmpErrors += ring.receiveErrors(s.fd, p.onQueuedError);
  }
  for (let batches = 0;; batches++) {
    // A session that never drains (a flooding server) gets its share, then the next round.
    if (batches === READ_BATCHES_PER_DISPATCH) {
      getPoller().again(s.fd);
      break;
    }
    if (p.gathered === ring.slots) flushReplies(p);
    const want = ring.slots - p.gathered;
    let n: number;
    try {
      n = ring.receive(s.fd, p.gathered, want);
    } catch (e) {
      if (!(e instanceof SystemError)) throw e;
      // A pending ICMP error (port unreachable → ECONNREFUSED, …): counted; the session lives on.
      p.counters.icmpErrors++;
      flushReplies(p);
      ring.receiveErrors(s.fd, p.onQueuedError);
      continue;
    }
    if (n === 0) break;
    const end = p.gathered + n;
    countKernelDrops(p.counters, "upstream", s, ring.dropCount(end - 1));
    for (let i = p.gathered; i < end; i++) takeReply(p, s, i);
    p.gathered = end;
    s.lastActive = Date.now();
    // A short batch means drained (anything newer is a new edge).
    if (n < want) break;
  }
}

/** Slot `i` of the ring, read from `s`'s socket: its replies into the round's batch, or counted as dropped. */
function takeReply(p: ReplyPath, s: Session, i: number): void {
  const { ring, counters: c } = p;
  const memory = ring.memory;
  const srcAt = ring.sourceOffset(i);
  // A coalesced read (UDP_GRO): several replies of one remote, each a view of the slot.
  const datagrams = ring.datagramCount(i);
  c.repliesReceived += datagrams;
  countCoalesced(c, datagrams);
  // Mostly the remote the client last sent to: compared in place before any hashing.
  const last = s.remote;
  const hit = last !== undefined && sockaddrIs(memory, srcAt, last);
  const remoteKey = hit ? s.remoteKey : sockaddrKey(memory, srcAt);
  if (p.restricted && !s.contacted?.has(remoteKey)) return countRelayDrop(c, "nat-restricted", datagrams);
  const ttl = p.fields.ttlOf(ring.hopLimit(i));
  if (ttl === 0) return countRelayDrop(c, "reply-ttl-expired", datagrams);
  const tos = p.fields.classOf(ring.trafficClass(i));
  const from = hit ? last : p.remote.at(memory, srcAt, remoteKey);
  for (let k = 0; k < datagrams; k++) p.batch.add(from, s, ring.datagram(i, k), tos, ttl);
}
