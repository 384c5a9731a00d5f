/**
 * Copies for `plain` receivers: sent from the forwarder's own address (as samplicator does without
 * `-S`), through one ordinary UDP socket per family, one sendmmsg per round. Each socket has
 * IP_RECVERR, so an unreachable receiver's ICMP errors come back here, counted against it, and the
 * pending error they leave costs no other receiver its copy (the send is tried once more).
 * @module
 */
import { addressKey, sameSocketAddress } from "@anysrc/core";
import { closeFd, createRecvRing, createSendRing, isPendingIcmpError, openUdpSocket, type Poller, Ready, type RecvRing, type SendRing } from "@anysrc/sys";
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

/** The sender's ring, what each message is, and its sockets. */
interface PlainState {
  readonly poller: Poller;
  readonly mark: number | undefined;
  readonly ring: SendRing;
  /** Per message: the receiver it is a copy for, its family. */
  readonly owners: (ReceiverState | undefined)[];
  readonly families: Uint8Array;
  count: number;
  /** Copies sent by flushes that a full ring forced, reported by the next flush. */
  flushed: number;
  readonly sockets: Partial<Record<4 | 6, number>>;
  readonly errors: RecvRing;
  /** Which receiver an error-queue entry is about: by the destination the kernel names. */
  readonly byDestination: Map<number, ReceiverState>;
}

/**
 * A sender whose sockets open on first use, registered with `poller` for their error queues;
 * `mark` (SO_MARK) as the transports have it.
 * @example const plain = createPlainSender(getPoller()); plain.add(receiver, payload, 0, -1); plain.flush();
 */
export function createPlainSender(poller: Poller, mark?: number): PlainSender {
  const ring = createSendRing({ slots: 64, headerSize: 8 });
  const st: PlainState = {
    poller,
    mark,
    ring,
    owners: new Array<ReceiverState | undefined>(ring.slots).fill(undefined),
    families: new Uint8Array(ring.slots),
    count: 0,
    flushed: 0,
    sockets: {},
    errors: createRecvRing({ slots: 8, slotSize: 256 }),
    byDestination: new Map(),
  };
  return {
    add(r, payload, tos, ttl) {
      if (st.count === ring.slots) st.flushed += flushAll(st);
      const i = st.count++;
      const family = r.spec.address.family;
      ring.setDestination(i, r.spec.address);
      ring.setSingle(i, ring.addressOf(payload), payload.length);
      ring.setIpFields(i, family, tos === 0 ? -1 : tos, ttl);
      st.owners[i] = r;
      st.families[i] = family;
      if (r.counters.copies === 0) st.byDestination.set(addressKey(r.spec.address), r);
      r.counters.copies++;
      r.counters.bytes += payload.length;
    },
    flush() {
      const sent = st.flushed + flushAll(st);
      st.flushed = 0;
      return sent;
    },
    close() {
      for (const fd of Object.values(st.sockets)) {
        poller.remove(fd);
        closeFd(fd);
      }
    },
  };
}

/** The family's socket, opened and registered for its error queue on first use. */
function socketFor(st: PlainState, family: 4 | 6): number {
  let fd = st.sockets[family];
  if (fd !== undefined) return fd;
  fd = openUdpSocket({ family, receiveErrors: true, sendBuffer: 4 << 20, ...(st.mark !== undefined ? { mark: st.mark } : {}) });
  st.poller.add(fd, NO_INTEREST, readErrors, { st, fd });
  st.sockets[family] = fd;
  return fd;
}

/** ICMP errors and local send errors, counted against the receiver they name. */
function readErrors(events: number, c: { st: PlainState; fd: number }): void {
  if (!(events & Ready.error)) return;
  c.st.errors.receiveErrors(c.fd, (e) => {
    const at = e.destination;
    const r = at ? c.st.byDestination.get(addressKey(at)) : undefined;
    if (!r || !sameSocketAddress(r.spec.address, at!)) return;
    if (e.origin === "icmp" || e.origin === "icmp6") r.counters.icmpUnreachable++;
    else r.counters.errors++;
  });
}

/** Everything added; returns how many copies the kernel took. */
function flushAll(st: PlainState): number {
  let sent = 0;
  // Messages go per family run (each family has its own socket), order kept within each.
  for (let from = 0; from < st.count;) {
    let to = from + 1;
    while (to < st.count && st.families[to] === st.families[from]) to++;
    sent += sendFamily(st, st.families[from] as 4 | 6, from, to);
    from = to;
  }
  st.count = 0;
  return sent;
}

/** Messages [from, to), one family's, on its socket. */
function sendFamily(st: PlainState, family: 4 | 6, from: number, to: number): number {
  const fd = socketFor(st, family);
  let sent = 0;
  let retried = false;
  for (let done = from; done < to;) {
    const k = st.ring.send(fd, done, to - done);
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
    st.owners[done]!.counters.errors++;
    st.owners[done]!.counters.copies--;
    done++;
    retried = false;
  }
  return sent;
}
