/**
 * Samplicator-style forwarding: every datagram from an allowed sender goes to each of its receivers
 * (the `--to` ones and those of every prefix that contains it, one in N where a receiver samples),
 * with the sender's own address and port as source — or the forwarder's, for `plain` receivers.
 * Senders outside the allowed networks are dropped and counted.
 * @module
 */
import { errnoName, formatSocketAddress, type SocketAddress } from "@anysrc/core";
import { createDatagramBatch } from "../datagram_batch.ts";
import { createIpFieldPolicy, type IpFieldPolicy } from "../ip_field_policy.ts";
import {
  bindSocket,
  closeFd,
  createRecvRing,
  decodeSockaddr,
  enableUdpGro,
  getPoller,
  openUdpSocket,
  READABLE,
  sockaddrIs,
  sockaddrKey,
  socketDropCount,
} from "@anysrc/sys";
import type { Outbound } from "../outbound.ts";
import { countCoalesced, countKernelDrops, countRelayDrop, type DropWatch, type RelayCounters } from "../relay_stats.ts";
import type { ForwardRoutes } from "./forward_routes.ts";
import { createPlainSender } from "./plain_sender.ts";

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

/**
 * Start forwarding.
 * @example startForwarder({ listen, routes: createForwardRoutes(receivers, [], allow), outbound, counters, receiveBuffer, offload: true, onOffloadFallback });
 */
export function startForwarder(o: ForwarderOptions): Forwarder {
  const c = o.counters;
  const poller = getPoller();
  const ring = createRecvRing({ slots: 32, slotSize: 65536 });
  const fields = o.ipFields ?? createIpFieldPolicy();
  const fd = openUdpSocket({
    family: o.listen.family,
    reuseAddress: true,
    receiveBuffer: o.receiveBuffer,
    receiveDropCount: true,
    receiveTrafficClass: fields.readsClass,
    receiveHopLimit: fields.readsTtl,
  });
  const watch: DropWatch = { drops: 0 };
  try {
    bindSocket(fd, o.listen);
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  if (o.offload) {
    const e = enableUdpGro(fd);
    if (e !== 0) {
      c.offloadFallbacks++;
      o.onOffloadFallback(`listener ${formatSocketAddress(o.listen)}: UDP_GRO refused (${errnoName(e)}); reading datagrams one by one`);
    }
  }
  let routes = o.routes;
  c.receivers = routes.receivers.map((r) => r.counters);
  // Decoded senders, whether they are allowed and their receivers, by key: the per-datagram path
  // is a Map lookup, and a reload clears it.
  const senders = new Map<number, { readonly address: SocketAddress; readonly allowed: boolean; readonly targets: Int32Array }>();
  const copies = createDatagramBatch();
  const plain = createPlainSender(poller, o.mark);
  const acceptedSlot = new Int32Array(ring.slots);
  const acceptedSender: SocketAddress[] = [];
  const acceptedTargets: Int32Array[] = [];
  const acceptedTos = new Int16Array(ring.slots);
  const acceptedTtl = new Int16Array(ring.slots);
  // Per receiver, the accepted datagrams it gets this batch, as linked lists in typed arrays
  // (first, last, next entry), so copies leave receiver by receiver whatever the number of receivers.
  let first = new Int32Array(routes.receivers.length).fill(-1);
  let last = new Int32Array(routes.receivers.length);
  let entryOf = new Int32Array(256);
  let nextEntry = new Int32Array(256);
  const touched: number[] = [];
  // The batch's accepted datagrams one by one: accepted datagram a's segment k is at acceptedBase[a] + k,
  // in `payloads` (one view each, shared by all its receivers) and, with sampling, in `taken`
  // (whether some receiver took it).
  const acceptedBase = new Int32Array(ring.slots);
  const payloads: Uint8Array[] = [];
  let taken = new Uint8Array(ring.slots * 64);

  const senderOf = (at: number) => {
    const memory = ring.memory;
    const key = sockaddrKey(memory, at);
    let sender = senders.get(key);
    if (!sender || !sockaddrIs(memory, at, sender.address)) {
      if (senders.size >= MAX_SENDERS) senders.clear();
      const address = decodeSockaddr(memory, at)!;
      sender = { address, allowed: routes.allows(address), targets: routes.targetsOf(address) };
      senders.set(key, sender);
    }
    return sender;
  };

  /** Group the batch's accepted datagrams by receiver; returns how many entries. */
  const groupByReceiver = (accepted: number) => {
    let entries = 0;
    for (let a = 0; a < accepted; a++) {
      const targets = acceptedTargets[a]!;
      for (let t = 0; t < targets.length; t++) {
        const r = targets[t]!;
        if (entries === entryOf.length) {
          entryOf = grow(entryOf);
          nextEntry = grow(nextEntry);
        }
        entryOf[entries] = a;
        nextEntry[entries] = -1;
        if (first[r] === -1) {
          first[r] = entries;
          touched.push(r);
        } else nextEntry[last[r]!] = entries;
        last[r] = entries++;
      }
    }
  };

  /** Copies receiver by receiver: each receiver's copies of one sender are consecutive (one GSO run). */
  const fanOut = () => {
    const receivers = routes.receivers;
    for (const r of touched) {
      const state = receivers[r]!;
      const { address: dst, every, plain: isPlain } = state.spec;
      const ttlOverride = state.spec.ttl ?? -1;
      for (let e = first[r]!; e !== -1; e = nextEntry[e]!) {
        const a = entryOf[e]!;
        const i = acceptedSlot[a]!;
        const tos = acceptedTos[a]!;
        const ttl = ttlOverride >= 0 ? ttlOverride : acceptedTtl[a]!;
        for (let k = 0, count = ring.datagramCount(i), at = acceptedBase[a]!; k < count; k++) {
          if (every > 1 && state.seen++ % every !== 0) {
            state.counters.sampledOut++;
            continue;
          }
          if (routes.sampling) taken[at + k] = 1;
          const payload = payloads[at + k]!;
          if (isPlain) {
            plain.add(state, payload, tos, ttl);
            continue;
          }
          state.counters.copies++;
          state.counters.bytes += payload.length;
          copies.add(acceptedSender[a]!, dst, payload, tos, ttl);
        }
      }
      first[r] = -1;
    }
    touched.length = 0;
  };

  /** With sampling, a datagram no receiver took is dropped `sampled-out`; the rest are forwarded. */
  const countSampled = (accepted: number) => {
    for (let a = 0; a < accepted; a++) {
      const i = acceptedSlot[a]!;
      for (let k = 0, count = ring.datagramCount(i), at = acceptedBase[a]!; k < count; k++) {
        if (taken[at + k] === 1) c.forwarded++;
        else countRelayDrop(c, "sampled-out");
        taken[at + k] = 0;
      }
    }
  };

  poller.add(fd, READABLE, () => {
    // A short batch means drained (anything newer is a new edge, reported by the poller).
    for (let n = ring.slots; n === ring.slots;) {
      n = ring.receive(fd);
      if (n > 0) countKernelDrops(c, "listener", watch, ring.dropCount(n - 1));
      copies.clear();
      let accepted = 0;
      let acceptedDatagrams = 0;
      for (let i = 0; i < n; i++) {
        const datagrams = ring.datagramCount(i);
        c.received += datagrams;
        countCoalesced(c, datagrams);
        const sender = senderOf(ring.sourceOffset(i));
        if (!sender.allowed) {
          countRelayDrop(c, "sender-not-allowed", datagrams);
          continue;
        }
        if (sender.targets.length === 0) {
          countRelayDrop(c, "no-receiver", datagrams);
          continue;
        }
        const ttl = fields.ttlOf(ring.hopLimit(i));
        if (ttl === 0) {
          countRelayDrop(c, "ttl-expired", datagrams);
          continue;
        }
        if (!routes.sampling) c.forwarded += datagrams;
        acceptedTos[accepted] = fields.classOf(ring.trafficClass(i));
        acceptedTtl[accepted] = ttl;
        acceptedSlot[accepted] = i;
        acceptedBase[accepted] = acceptedDatagrams;
        for (let k = 0; k < datagrams; k++) payloads[acceptedDatagrams + k] = ring.datagram(i, k);
        acceptedDatagrams += datagrams;
        acceptedTargets[accepted] = sender.targets;
        acceptedSender[accepted++] = sender.address;
      }
      if (acceptedDatagrams > taken.length) taken = new Uint8Array(acceptedDatagrams * 2);
      groupByReceiver(accepted);
      fanOut();
      if (routes.sampling) countSampled(accepted);
      c.copies += plain.flush();
      c.copies += o.outbound.emit(copies.list, "copy-refused");
    }
  });

  return {
    stopListening() {
      poller.remove(fd);
      countKernelDrops(c, "listener", watch, socketDropCount(fd));
      closeFd(fd);
      plain.close();
    },
    setRoutes(next) {
      routes = next;
      senders.clear();
      first = new Int32Array(next.receivers.length).fill(-1);
      last = new Int32Array(next.receivers.length);
      c.receivers = next.receivers.map((r) => r.counters);
    },
    refreshKernelDrops() {
      countKernelDrops(c, "listener", watch, socketDropCount(fd));
    },
  };
}

/** The same entries in an array twice as long. */
function grow(a: Int32Array): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}
