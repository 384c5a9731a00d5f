/**
 * Samplicator-style forwarding: every datagram from an allowed sender goes to every receiver, with
 * the sender's own address and port as source. Senders outside the allowed networks are dropped and
 * counted.
 * @module
 */
import { type Cidr, type SocketAddress, cidrContains, errnoName, formatSocketAddress } from "@anysrc/core";
import { createDatagramBatch } from "../datagram_batch.ts";
import { type IpFieldPolicy, createIpFieldPolicy } from "../ip_field_policy.ts";
import {
  READABLE, bindSocket, closeFd, createRecvRing, decodeSockaddr, enableUdpGro, getPoller, openUdpSocket, sockaddrIs, sockaddrKey, socketDropCount,
} from "@anysrc/sys";
import type { ReplyEmitter } from "../reply_emitter.ts";
import { type DropWatch, type RelayCounters, countCoalesced, countKernelDrops, countRelayDrop } from "../relay_stats.ts";

/** Settings of the forwarder. */
export interface ForwarderOptions {
  readonly listen: SocketAddress;
  readonly receivers: readonly SocketAddress[];
  readonly allow: readonly Cidr[];
  readonly emitter: ReplyEmitter;
  readonly counters: RelayCounters;
  /** Receive buffer of the listening socket, bytes. */
  readonly receiveBuffer: number;
  /** UDP_GRO on the listening socket (`--offload on`): a sender's burst read as one coalesced batch. */
  readonly offload: boolean;
  readonly onOffloadFallback: (reason: string) => void;
  /** What the copies carry in their IP header (`--dscp`, `--ecn`, `--ttl`); default: the sender's class kept. */
  readonly ipFields?: IpFieldPolicy;
}

/** Default receive buffer of the forwarder's socket. */
export const DEFAULT_FORWARD_BUFFER = 4 << 20;

/** A running forwarder. */
export interface Forwarder {
  stopListening(): void;
  /** Bring the listener's kernel drop count up to date (SO_MEMINFO). */
  refreshKernelDrops(): void;
}

/** Most sender records remembered; they are only a cache of decoded addresses. */
const MAX_SENDERS = 4096;

/**
 * Start forwarding.
 * @example startForwarder({ listen, receivers, allow: [parseCidr("198.18.0.0/15")], emitter, counters });
 */
export function startForwarder(o: ForwarderOptions): Forwarder {
  const c = o.counters;
  const poller = getPoller();
  const ring = createRecvRing({ slots: 32, slotSize: 65536 });
  const fields = o.ipFields ?? createIpFieldPolicy();
  const fd = openUdpSocket({
    family: o.listen.family, reuseAddress: true, receiveBuffer: o.receiveBuffer, receiveDropCount: true,
    receiveTrafficClass: fields.readsClass, receiveHopLimit: fields.readsTtl,
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
  // Decoded senders and the allow verdict, by key: the per-datagram path is a Map lookup.
  const senders = new Map<number, { readonly address: SocketAddress; readonly allowed: boolean }>();
  const copies = createDatagramBatch();
  const hasReceiver4 = o.receivers.some((r) => r.family === 4);
  const hasReceiver6 = o.receivers.some((r) => r.family === 6);
  const acceptedSlot = new Int32Array(ring.slots);
  const acceptedSender: SocketAddress[] = [];
  const acceptedTos = new Int16Array(ring.slots);
  const acceptedTtl = new Int16Array(ring.slots);

  poller.add(fd, READABLE, () => {
    const memory = ring.memory;
    // A short batch means drained (anything newer is a new edge, reported by the poller).
    for (let n = ring.slots; n === ring.slots; ) {
      n = ring.receive(fd);
      if (n > 0) countKernelDrops(c, "listener", watch, ring.dropCount(n - 1));
      copies.clear();
      let accepted = 0;
      for (let i = 0; i < n; i++) {
        const datagrams = ring.datagramCount(i);
        c.received += datagrams;
        countCoalesced(c, datagrams);
        const at = ring.sourceOffset(i);
        const key = sockaddrKey(memory, at);
        let sender = senders.get(key);
        if (!sender || !sockaddrIs(memory, at, sender.address)) {
          if (senders.size >= MAX_SENDERS) senders.clear();
          const address = decodeSockaddr(memory, at)!;
          sender = { address, allowed: o.allow.some((net) => cidrContains(net, address.ip)) };
          senders.set(key, sender);
        }
        if (!sender.allowed) {
          countRelayDrop(c, "sender-not-allowed", datagrams);
          continue;
        }
        if (!(sender.address.family === 4 ? hasReceiver4 : hasReceiver6)) {
          countRelayDrop(c, "no-receiver", datagrams);
          continue;
        }
        const ttl = fields.ttlOf(ring.hopLimit(i));
        if (ttl === 0) {
          countRelayDrop(c, "ttl-expired", datagrams);
          continue;
        }
        c.forwarded += datagrams;
        acceptedTos[accepted] = fields.classOf(ring.trafficClass(i));
        acceptedTtl[accepted] = ttl;
        acceptedSlot[accepted] = i;
        acceptedSender[accepted++] = sender.address;
      }
      // Copies receiver by receiver: each receiver's copies of one sender's datagrams are
      // consecutive, so a transport with GSO sends them as one run. Order per receiver is kept.
      for (const dst of o.receivers) {
        for (let a = 0; a < accepted; a++) {
          const src = acceptedSender[a]!;
          if (dst.family !== src.family) continue;
          const i = acceptedSlot[a]!;
          const tos = acceptedTos[a]!;
          const ttl = acceptedTtl[a]!;
          for (let k = 0, count = ring.datagramCount(i); k < count; k++) copies.add(src, dst, ring.datagram(i, k), tos, ttl);
        }
      }
      c.copies += o.emitter.emit(copies.list, "copy-refused");
    }
  });

  return {
    stopListening() {
      poller.remove(fd);
      countKernelDrops(c, "listener", watch, socketDropCount(fd));
      closeFd(fd);
    },
    refreshKernelDrops() {
      countKernelDrops(c, "listener", watch, socketDropCount(fd));
    },
  };
}
