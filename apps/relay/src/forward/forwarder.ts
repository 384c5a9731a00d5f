/**
 * Samplicator-style forwarding: every datagram from an allowed sender goes to each of its receivers
 * (the `--to` ones and those of every prefix that contains it, one in N where a receiver samples),
 * with the sender's own address and port as source — or the forwarder's, for `plain` receivers.
 * Senders outside the allowed networks are dropped and counted.
 * @module
 */
import { errnoName, formatSocketAddress, type SocketAddress } from "@anysrc/core";
import { createDatagramBatch, type DatagramBatch } from "../datagram_batch.ts";
import { createIpFieldPolicy, type IpFieldPolicy } from "../ip_field_policy.ts";
import {
  bindSocket,
  closeFd,
  configureUdpSocket,
  createRecvRing,
  decodeSockaddr,
  enableUdpGro,
  getPoller,
  openUdpSocket,
  READ_BATCHES_PER_DISPATCH,
  READABLE,
  type RecvRing,
  setInheritable,
  sockaddrIs,
  sockaddrKey,
  socketDropCount,
  type UdpSocketOptions,
} from "@anysrc/sys";
import type { Outbound } from "../outbound.ts";
import { countCoalesced, countKernelDrops, countRelayDrop, type DropWatch, type RelayCounters } from "../relay_stats.ts";
import type { ForwardRoutes } from "./forward_routes.ts";
import { createPlainSender, type PlainSender } from "./plain_sender.ts";

/** Settings of the forwarder. */
export interface ForwarderOptions {
  readonly listen: SocketAddress;
  /** Receivers and allowed senders; {@link Forwarder.setRoutes} swaps them while running. */
  readonly routes: ForwardRoutes;
  readonly outbound: Outbound;
  readonly counters: RelayCounters;
  /** Receive buffer of the listening socket, bytes. */
  readonly receiveBuffer: number;
  /** UDP_GRO on the listening socket (`--offload on`): a sender's burst read as one coalesced batch. */
  readonly offload: boolean;
  readonly onOffloadFallback: (reason: string) => void;
  /** What the copies carry in their IP header (`--dscp`, `--ecn`, `--ttl`); default: the sender's class kept. */
  readonly ipFields?: IpFieldPolicy;
  /** SO_MARK of the sockets that send `plain` copies. */
  readonly mark?: number;
  /** The listening socket, opened and bound by a supervisor (`--workers`): read instead of opening one. */
  readonly inheritedListener?: number;
}

/** Default receive buffer of the forwarder's socket. */
export const DEFAULT_FORWARD_BUFFER = 4 << 20;

/** A running forwarder. */
export interface Forwarder {
  stopListening(): void;
  /** From the next receive batch on, forward by `routes` (a reload): nothing read is lost. */
  setRoutes(routes: ForwardRoutes): void;
  /** Bring the listener's kernel drop count up to date (SO_MEMINFO). */
  refreshKernelDrops(): void;
}

/** Most sender records remembered; they are only a cache of decoded addresses. */
const MAX_SENDERS = 4096;

/** One forwarder's state: the record its handler gets from the poller, and every step below works on. */
interface ForwardState {
  readonly o: ForwarderOptions;
  readonly c: RelayCounters;
  readonly fd: number;
  readonly ring: RecvRing;
  readonly watch: DropWatch;
  readonly fields: IpFieldPolicy;
  routes: ForwardRoutes;
  /** Decoded senders, whether they are allowed and their receivers, by key: a Map lookup per datagram; a reload clears it. */
  readonly senders: Map<number, { readonly address: SocketAddress; readonly allowed: boolean; readonly targets: Int32Array }>;
  readonly copies: DatagramBatch;
  readonly plain: PlainSender;
  // The batch's accepted datagrams: slot, sender, receivers, class, TTL, and where its segments
  // start in `payloads` (one view each, shared by all its receivers) and, with sampling, in `taken`
  // (whether some receiver took it).
  readonly acceptedSlot: Int32Array;
  readonly acceptedSender: SocketAddress[];
  readonly acceptedTargets: Int32Array[];
  readonly acceptedTos: Int16Array;
  readonly acceptedTtl: Int16Array;
  readonly acceptedBase: Int32Array;
  readonly payloads: Uint8Array[];
  taken: Uint8Array;
  // Per receiver, the accepted datagrams it gets this batch, as linked lists in typed arrays
  // (first, last, next entry), so copies leave receiver by receiver whatever the number of receivers.
  first: Int32Array;
  last: Int32Array;
  entryOf: Int32Array;
  nextEntry: Int32Array;
  readonly touched: number[];
}

/**
 * Start forwarding.
 * @example startForwarder({ listen, routes: createForwardRoutes(receivers, [], allow), outbound, counters, receiveBuffer, offload: true, onOffloadFallback });
 */
export function startForwarder(o: ForwarderOptions): Forwarder {
  const c = o.counters;
  const poller = getPoller();
  const ring = createRecvRing({ slots: 32, slotSize: 65536 });
  const fields = o.ipFields ?? createIpFieldPolicy();
  const fd = openForwardSocket(o, fields);
  c.receivers = o.routes.receivers.map((r) => r.counters);
  const f: ForwardState = {
    o,
    c,
    fd,
    ring,
    watch: { drops: 0 },
    fields,
    routes: o.routes,
    senders: new Map(),
    copies: createDatagramBatch(),
    plain: createPlainSender(poller, o.mark),
    acceptedSlot: new Int32Array(ring.slots),
    acceptedSender: [],
    acceptedTargets: [],
    acceptedTos: new Int16Array(ring.slots),
    acceptedTtl: new Int16Array(ring.slots),
    acceptedBase: new Int32Array(ring.slots),
    payloads: [],
    taken: new Uint8Array(ring.slots * 64),
    first: new Int32Array(o.routes.receivers.length).fill(-1),
    last: new Int32Array(o.routes.receivers.length),
    entryOf: new Int32Array(256),
    nextEntry: new Int32Array(256),
    touched: [],
  };
  poller.add(fd, READABLE, readSenders, f);
  return {
    stopListening() {
      poller.remove(fd);
      countKernelDrops(c, "listener", f.watch, socketDropCount(fd));
      closeFd(fd);
      f.plain.close();
    },
    setRoutes(next) {
      f.routes = next;
      f.senders.clear();
      f.first = new Int32Array(next.receivers.length).fill(-1);
      f.last = new Int32Array(next.receivers.length);
      c.receivers = next.receivers.map((r) => r.counters);
    },
    refreshKernelDrops() {
      countKernelDrops(c, "listener", f.watch, socketDropCount(fd));
    },
  };
}

/**
 * The options of a forwarder's listening socket: its kernel drop count, and what `fields` must read
 * of each datagram's IP header.
 * @example openUdpSocket(forwardListenerOptions(4, 4 << 20, createIpFieldPolicy()))
 */
export function forwardListenerOptions(family: 4 | 6, receiveBuffer: number, fields: IpFieldPolicy): UdpSocketOptions {
  return {
    family,
    reuseAddress: true,
    receiveBuffer,
    receiveDropCount: true,
    receiveTrafficClass: fields.readsClass,
    receiveHopLimit: fields.readsTtl,
  };
}

/** The listening socket, bound (or inherited), with GRO where asked and granted. */
function openForwardSocket(o: ForwarderOptions, fields: IpFieldPolicy): number {
  const options = forwardListenerOptions(o.listen.family, o.receiveBuffer, fields);
  const fd = o.inheritedListener ?? openUdpSocket(options);
  try {
    if (o.inheritedListener === undefined) bindSocket(fd, o.listen);
    else {
      configureUdpSocket(fd, options);
      setInheritable(fd, false);
    }
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  const e = o.offload ? enableUdpGro(fd) : 0;
  if (e !== 0) {
    o.counters.offloadFallbacks++;
    o.onOffloadFallback(`listener ${formatSocketAddress(o.listen)}: UDP_GRO refused (${errnoName(e)}); reading datagrams one by one`);
  }
  return fd;
}

/** The poller's handler: every batch waiting on the socket, read, fanned out, sent. */
function readSenders(_events: number, f: ForwardState): void {
  const { ring, c } = f;
  // A short batch means drained (anything newer is a new edge, reported by the poller). A flood
  // that never drains gets READ_BATCHES_PER_DISPATCH batches, then the next round.
  for (let n = ring.slots, batches = 0; n === ring.slots; batches++) {
    if (batches === READ_BATCHES_PER_DISPATCH) {
      getPoller().again(f.fd);
      break;
    }
    n = ring.receive(f.fd);
    if (n > 0) countKernelDrops(c, "listener", f.watch, ring.dropCount(n - 1));
    f.copies.clear();
    let accepted = 0;
    let datagrams = 0;
    for (let i = 0; i < n; i++) {
      const taken = accept(f, i, accepted, datagrams);
      if (taken === 0) continue;
      accepted++;
      datagrams += taken;
    }
    if (datagrams > f.taken.length) f.taken = new Uint8Array(datagrams * 2);
    groupByReceiver(f, accepted);
    fanOut(f);
    if (f.routes.sampling) countSampled(f, accepted);
    c.copies += f.plain.flush();
    c.copies += f.o.outbound.emit(f.copies.list, "copy-refused");
  }
}

/** Slot `i` as accepted datagram number `a` (its segments from `base` on); returns its datagrams, or 0 when refused (counted). */
function accept(f: ForwardState, i: number, a: number, base: number): number {
  const { ring, c } = f;
  const datagrams = ring.datagramCount(i);
  c.received += datagrams;
  countCoalesced(c, datagrams);
  const sender = senderOf(f, ring.sourceOffset(i));
  const ttl = f.fields.ttlOf(ring.hopLimit(i));
  const refused = !sender.allowed ? "sender-not-allowed" : sender.targets.length === 0 ? "no-receiver" : ttl === 0 ? "ttl-expired" : undefined;
  if (refused) {
    countRelayDrop(c, refused, datagrams);
    return 0;
  }
  if (!f.routes.sampling) c.forwarded += datagrams;
  f.acceptedTos[a] = f.fields.classOf(ring.trafficClass(i));
  f.acceptedTtl[a] = ttl;
  f.acceptedSlot[a] = i;
  f.acceptedBase[a] = base;
  for (let k = 0; k < datagrams; k++) f.payloads[base + k] = ring.datagram(i, k);
  f.acceptedTargets[a] = sender.targets;
  f.acceptedSender[a] = sender.address;
  return datagrams;
}

function senderOf(f: ForwardState, at: number) {
  const memory = f.ring.memory;
  const key = sockaddrKey(memory, at);
  let sender = f.senders.get(key);
  if (!sender || !sockaddrIs(memory, at, sender.address)) {
    if (f.senders.size >= MAX_SENDERS) f.senders.clear();
    const address = decodeSockaddr(memory, at)!;
    sender = { address, allowed: f.routes.allows(address), targets: f.routes.targetsOf(address) };
    f.senders.set(key, sender);
  }
  return sender;
}

/** Group the batch's accepted datagrams by receiver. */
function groupByReceiver(f: ForwardState, accepted: number): void {
  let entries = 0;
  for (let a = 0; a < accepted; a++) {
    const targets = f.acceptedTargets[a]!;
    for (let t = 0; t < targets.length; t++) {
      const r = targets[t]!;
      if (entries === f.entryOf.length) {
        f.entryOf = grow(f.entryOf);
        f.nextEntry = grow(f.nextEntry);
      }
      f.entryOf[entries] = a;
      f.nextEntry[entries] = -1;
      if (f.first[r] === -1) {
        f.first[r] = entries;
        f.touched.push(r);
      } else f.nextEntry[f.last[r]!] = entries;
      f.last[r] = entries++;
    }
  }
}

/** Copies receiver by receiver: each receiver's copies of one sender are consecutive (one GSO run). */
function fanOut(f: ForwardState): void {
  const { ring, routes } = f;
  for (const r of f.touched) {
    const state = routes.receivers[r]!;
    const { address: dst, every, plain: isPlain } = state.spec;
    const ttlOverride = state.spec.ttl ?? -1;
    for (let e = f.first[r]!; e !== -1; e = f.nextEntry[e]!) {
      const a = f.entryOf[e]!;
      const tos = f.acceptedTos[a]!;
      const ttl = ttlOverride >= 0 ? ttlOverride : f.acceptedTtl[a]!;
      for (let k = 0, count = ring.datagramCount(f.acceptedSlot[a]!), at = f.acceptedBase[a]!; k < count; k++) {
        if (every > 1 && state.seen++ % every !== 0) {
          state.counters.sampledOut++;
          continue;
        }
        if (routes.sampling) f.taken[at + k] = 1;
        const payload = f.payloads[at + k]!;
        if (isPlain) {
          f.plain.add(state, payload, tos, ttl);
          continue;
        }
        state.counters.copies++;
        state.counters.bytes += payload.length;
        f.copies.add(f.acceptedSender[a]!, dst, payload, tos, ttl);
      }
    }
    f.first[r] = -1;
  }
  f.touched.length = 0;
}

/** With sampling, a datagram no receiver took is dropped `sampled-out`; the rest are forwarded. */
function countSampled(f: ForwardState, accepted: number): void {
  for (let a = 0; a < accepted; a++) {
    for (let k = 0, count = f.ring.datagramCount(f.acceptedSlot[a]!), at = f.acceptedBase[a]!; k < count; k++) {
      if (f.taken[at + k] === 1) f.c.forwarded++;
      else countRelayDrop(f.c, "sampled-out");
      f.taken[at + k] = 0;
    }
  }
}

/** The same entries in an array twice as long. */
function grow(a: Int32Array): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}
