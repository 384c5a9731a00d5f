/**
 * Samplicator-style forwarding: every datagram from an allowed sender goes to every receiver, with
 * the sender's own address and port as source. Senders outside the allowed networks are dropped and
 * counted.
 * @module
 */
import { type Cidr, type Datagram, type SocketAddress, cidrContains } from "@anysrc/core";
import { READABLE, bindSocket, closeFd, createRecvRing, decodeSockaddr, getPoller, openUdpSocket, sockaddrIs, sockaddrKey, socketDropCount } from "@anysrc/sys";
import type { ReplyEmitter } from "../reply_emitter.ts";
import { type DropWatch, type RelayCounters, countKernelDrops, countRelayDrop } from "../relay_stats.ts";

/** Settings of the forwarder. */
export interface ForwarderOptions {
  readonly listen: SocketAddress;
  readonly receivers: readonly SocketAddress[];
  readonly allow: readonly Cidr[];
  readonly emitter: ReplyEmitter;
  readonly counters: RelayCounters;
  /** Receive buffer of the listening socket, bytes. */
  readonly receiveBuffer: number;
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
  const fd = openUdpSocket({ family: o.listen.family, reuseAddress: true, receiveBuffer: o.receiveBuffer, receiveDropCount: true });
  const watch: DropWatch = { drops: 0 };
  try {
    bindSocket(fd, o.listen);
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  // Decoded senders and the allow verdict, by key: the per-datagram path is a Map lookup.
  const senders = new Map<number, { readonly address: SocketAddress; readonly allowed: boolean }>();
  const out: { src: SocketAddress; dst: SocketAddress; payload: Uint8Array }[] = [];
  const batch: Datagram[] = [];

  poller.add(fd, READABLE, () => {
    const memory = ring.memory;
    // A short batch means drained (anything newer is a new edge, reported by the poller).
    for (let n = ring.slots; n === ring.slots; ) {
      n = ring.receive(fd);
      if (n > 0) countKernelDrops(c, "listener", watch, ring.dropCount(n - 1));
      batch.length = 0;
      let k = 0;
      for (let i = 0; i < n; i++) {
        c.received++;
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
          countRelayDrop(c, "sender-not-allowed");
          continue;
        }
        const payload = ring.payload(i);
        const k0 = k;
        for (const dst of o.receivers) {
          if (dst.family !== sender.address.family) continue;
          let d = out[k];
          if (!d) out[k] = d = { src: sender.address, dst, payload };
          else {
            d.src = sender.address;
            d.dst = dst;
            d.payload = payload;
          }
          batch.push(d);
          k++;
        }
        if (k === k0) countRelayDrop(c, "no-receiver");
        else c.forwarded++;
      }
      c.copies += o.emitter.emit(batch, "copy-refused");
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
