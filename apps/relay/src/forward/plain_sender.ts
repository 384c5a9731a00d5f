/**
 * Copies for `plain` receivers: sent from the forwarder's own address (as samplicator does without
 * `-S`), through one ordinary UDP socket per family, one sendmmsg per round. Each socket has
 * IP_RECVERR, so an unreachable receiver's ICMP errors come back here, counted against it, and the
 * pending error they leave costs no other receiver its copy (the send is tried once more).
 * @module
 */
import { addressKey, sameSocketAddress } from "@anysrc/core";
import { closeFd, createRecvRing, createSendRing, isPendingIcmpError, openUdpSocket, type Poller, Ready } from "@anysrc/sys";
import type { ReceiverState } from "./forward_routes.ts";

/** Copies waiting for the end of the round. */
export interface PlainSender {
  /** One copy of `payload` (a view that stays valid until {@link flush}) to `r`. */
  add(r: ReceiverState, payload: Uint8Array, tos: number, ttl: number): void;
  /** Send what was added; returns how many copies the kernel took. */
  flush(): number;
  close(): void;
}

const NO_INTEREST = { readable: false, writable: false } as const;

/**
 * A sender whose sockets open on first use, registered with `poller` for their error queues;
 * `mark` (SO_MARK) as the transports have it.
 * @example const plain = createPlainSender(getPoller()); plain.add(receiver, payload, 0, -1); plain.flush();
 */
export function createPlainSender(poller: Poller, mark?: number): PlainSender {
  const ring = createSendRing({ slots: 64, headerSize: 8 });
  const owners: (ReceiverState | undefined)[] = new Array<ReceiverState | undefined>(ring.slots).fill(undefined);
  const families = new Uint8Array(ring.slots);
  let count = 0;
  // Copies sent by flushes that a full ring forced, reported by the next flush.
  let flushed = 0;
  const sockets: Partial<Record<4 | 6, number>> = {};
  const errors = createRecvRing({ slots: 8, slotSize: 256 });
  // Which receiver an error-queue entry is about: by the destination the kernel names.
  const byDestination = new Map<number, ReceiverState>();

  const socketFor = (family: 4 | 6): number => {
    let fd = sockets[family];
    if (fd !== undefined) return fd;
    fd = openUdpSocket({ family, receiveErrors: true, sendBuffer: 4 << 20, ...(mark !== undefined ? { mark } : {}) });
    const own = fd;
    poller.add(fd, NO_INTEREST, (events) => {
      if (!(events & Ready.error)) return;
      errors.receiveErrors(own, (e) => {
        const at = e.destination;
        const r = at ? byDestination.get(addressKey(at)) : undefined;
        if (!r || !sameSocketAddress(r.spec.address, at!)) return;
        if (e.origin === "icmp" || e.origin === "icmp6") r.counters.icmpUnreachable++;
        else r.counters.errors++;
      });
    });
    sockets[family] = fd;
    return fd;
  };

  const sendFamily = (family: 4 | 6, from: number, to: number): number => {
    const fd = socketFor(family);
    let sent = 0;
    let retried = false;
    for (let done = from; done < to;) {
      const k = ring.send(fd, done, to - done);
      if (k > 0) {
        done += k;
        sent += k;
        retried = false;
        continue;
      }
      // A pending ICMP error from an earlier copy fails this call without sending: once more.
      if (!retried && isPendingIcmpError(-k)) {
        retried = true;
        continue;
      }
      owners[done]!.counters.errors++;
      owners[done]!.counters.copies--;
      done++;
      retried = false;
    }
    return sent;
  };

  const flush = (): number => {
    let sent = 0;
    // Messages go per family run (each family has its own socket), order kept within each.
    for (let from = 0; from < count;) {
      let to = from + 1;
      while (to < count && families[to] === families[from]) to++;
      sent += sendFamily(families[from] as 4 | 6, from, to);
      from = to;
    }
    count = 0;
    return sent;
  };

  return {
    add(r, payload, tos, ttl) {
      if (count === ring.slots) flushed += flush();
      const i = count++;
      const family = r.spec.address.family;
      ring.setDestination(i, r.spec.address);
      ring.setSingle(i, ring.addressOf(payload), payload.length);
      ring.setIpFields(i, family, tos === 0 ? -1 : tos, ttl);
      owners[i] = r;
      families[i] = family;
      if (r.counters.copies === 0) byDestination.set(addressKey(r.spec.address), r);
      r.counters.copies++;
      r.counters.bytes += payload.length;
    },
    flush() {
      const sent = flushed + flush();
      flushed = 0;
      return sent;
    },
    close() {
      for (const fd of Object.values(sockets)) {
        poller.remove(fd);
        closeFd(fd);
      }
    },
  };
}
