/**
 * Batched receive: recvmmsg into one preallocated ArrayBuffer holding every mmsghdr, iovec, source
 * sockaddr, control buffer and packet slot. Nothing is allocated per datagram; accessors read in place.
 * @module
 */
import type { SocketAddress } from "@anysrc/core";
import { errno, lastError, libc } from "./libc.ts";
import { errnoName } from "@anysrc/core";
import {
  EAGAIN,
  ECONNREFUSED,
  EHOSTDOWN,
  EHOSTUNREACH,
  EMSGSIZE,
  ENETUNREACH,
  EPROTO,
  IP_ORIGDSTADDR,
  IP_RECVERR,
  IP_TOS,
  IP_TTL,
  IPV6_HOPLIMIT,
  IPV6_ORIGDSTADDR,
  IPV6_RECVERR,
  IPV6_TCLASS,
  MSG_DONTWAIT,
  MSG_ERRQUEUE,
  MSG_TRUNC,
  SO_EE_ORIGIN_ICMP,
  SO_EE_ORIGIN_ICMP6,
  SO_EE_ORIGIN_LOCAL,
  SO_RXQ_OVFL,
  SOL_IP,
  SOL_IPV6,
  SOL_SOCKET,
  SOL_UDP,
  UDP_GRO,
} from "./linux_constants.ts";
import { decodeSockaddr, SOCKADDR_STORAGE_SIZE } from "./sockaddr.ts";
import { IOVEC_SIZE, layOutMessages, MMSGHDR_SIZE } from "./message_memory.ts";

// cmsghdr (16 B) + sockaddr_in6 (28 B) rounded to 8 → 48, then 24 each for SO_RXQ_OVFL, UDP_GRO,
// the TOS / traffic class and the TTL / hop limit: 144; an error-queue entry (sock_extended_err +
// offender sockaddr) is 64. 192 holds either. (Too small a buffer loses cmsgs: MSG_CTRUNC.)
const CONTROL_SIZE = 192;

/** One entry of a socket's error queue (IP_RECVERR): a sock_extended_err and the datagram's destination. */
export interface QueuedError {
  /** Who reported it: this host ("local": EMSGSIZE with the MTU in `info`, ENOBUFS) or an ICMP message. */
  readonly origin: "local" | "icmp" | "icmp6" | "other";
  /** The errno name (ECONNREFUSED for port unreachable, EMSGSIZE for fragmentation needed / packet too big, …). */
  readonly code: string;
  readonly icmpType: number;
  readonly icmpCode: number;
  /** EMSGSIZE: the MTU the sender must fit (the next hop's, or the device's). */
  readonly info: number;
  /** Where the datagram that failed was going (msg_name), when the kernel says. */
  readonly destination: SocketAddress | undefined;
}

/**
 * A short stable name for counting an error-queue entry by type: `icmp-port-unreachable`,
 * `icmp-frag-needed`, `icmp6-packet-too-big`, `local-EMSGSIZE`, …
 * @example queuedErrorKind(e) // "icmp-port-unreachable"
 */
export function queuedErrorKind(e: QueuedError): string {
  if (e.origin === "icmp") {
    if (e.icmpType === 3) return `icmp-${ICMP_UNREACH[e.icmpCode] ?? `unreachable-${e.icmpCode}`}`;
    if (e.icmpType === 11) return "icmp-time-exceeded";
    return `icmp-type-${e.icmpType}`;
  }
  if (e.origin === "icmp6") {
    if (e.icmpType === 1) return `icmp6-${ICMP6_UNREACH[e.icmpCode] ?? `unreachable-${e.icmpCode}`}`;
    if (e.icmpType === 2) return "icmp6-packet-too-big";
    if (e.icmpType === 3) return "icmp6-time-exceeded";
    return `icmp6-type-${e.icmpType}`;
  }
  return `${e.origin}-${e.code}`;
}
/**
 * Errnos an ICMP error leaves pending on a UDP socket with IP_RECVERR (the next send returns and
 * clears it, sending nothing): the datagram of that send is not at fault and may be sent again.
 * EMSGSIZE is one of them — "fragmentation needed" / "packet too big" — and also what a send too
 * big for the route says itself: one retry tells them apart.
 * @example isPendingIcmpError(linux.ECONNREFUSED) // true
 */
export function isPendingIcmpError(errno: number): boolean {
  return errno === ECONNREFUSED || errno === EHOSTUNREACH || errno === ENETUNREACH || errno === EHOSTDOWN || errno === EPROTO || errno === EMSGSIZE;
}
const ICMP_UNREACH: Readonly<Record<number, string>> = {
  0: "net-unreachable",
  1: "host-unreachable",
  2: "protocol-unreachable",
  3: "port-unreachable",
  4: "frag-needed",
  9: "net-prohibited",
  10: "host-prohibited",
  13: "admin-prohibited",
};
const ICMP6_UNREACH: Readonly<Record<number, string>> = { 0: "no-route", 1: "admin-prohibited", 3: "address-unreachable", 4: "port-unreachable" };

/** Sizes of a {@link RecvRing}. */
export interface RecvRingOptions {
  /** Datagrams per recvmmsg call; default 32. */
  readonly slots?: number;
  /** Largest datagram accepted whole; longer ones are flagged truncated. Default 65536. */
  readonly slotSize?: number;
  /** Bytes left free before each payload, so IP/UDP headers can be written in front of it in place. */
  readonly headroom?: number;
}

/** A recvmmsg ring. Slot `i` is valid from one `receive` to the next. */
export interface RecvRing {
  readonly slots: number;
  readonly slotSize: number;
  readonly headroom: number;
  /** The whole backing memory (one ArrayBuffer). */
  readonly memory: Uint8Array;
  /** Per slot, a view of headroom + slotSize bytes; the payload starts at `headroom`. */
  readonly slotViews: readonly Uint8Array[];
  /**
   * One recvmmsg(MSG_DONTWAIT) into slots `from` .. `from + count - 1` (default: the whole ring), so
   * several sockets' datagrams can gather in one ring before they are sent on together. Returns how
   * many slots were filled; 0 when nothing was waiting. Slots outside the range keep their data.
   * @throws {SystemError} on errors other than EAGAIN.
   */
  receive(fd: number, from?: number, count?: number): number;
  /** Payload length of slot `i` (capped at slotSize when truncated). */
  length(i: number): number;
  /** True when the datagram in slot `i` was longer than the slot (MSG_TRUNC). */
  truncated(i: number): boolean;
  /** Payload of slot `i` as a new view (allocates; use slotViews + length on the hot path). */
  payload(i: number): Uint8Array;
  /** Sender of slot `i` (allocates a record). */
  source(i: number): SocketAddress | undefined;
  /** Where the raw source sockaddr of slot `i` lies in `memory`, for allocation-free keys. */
  sourceOffset(i: number): number;
  /** The original destination (IP_ORIGDSTADDR / IPV6_ORIGDSTADDR) of slot `i`, if delivered. */
  originalDestination(i: number): SocketAddress | undefined;
  /** Where the original-destination sockaddr of slot `i` lies in `memory`, or -1 (allocation-free). */
  originalDestinationOffset(i: number): number;
  /**
   * The socket's running count of kernel drops when slot `i` was queued (SO_RXQ_OVFL, enabled with
   * `receiveDropCount`); 0 when absent — the kernel sends it only once the count is non-zero. The
   * count only grows, so the last slot of a batch carries the batch's newest value.
   */
  dropCount(i: number): number;
  /**
   * The segment size of a coalesced read (UDP_GRO, enabled with `enableUdpGro`): slot `i` then holds
   * ⌈length / size⌉ datagrams of `size` bytes back to back, the last one possibly shorter. 0 when
   * the slot holds one datagram.
   */
  segmentSize(i: number): number;
  /** Datagrams in slot `i`: 1, or a coalesced read's ⌈length / segmentSize⌉. */
  datagramCount(i: number): number;
  /** Datagram `k` (below {@link datagramCount}) of slot `i` as a new view: the payload, or one segment of a coalesced read. */
  datagram(i: number, k: number): Uint8Array;
  /** Native address of slot `i`'s payload, for zero-copy send iovecs. */
  payloadAddress(i: number): number;
  /** Native address of `memory[0]`: what an offset such as {@link originalDestinationOffset} is relative to. */
  readonly baseAddress: number;
  /** The TOS byte / traffic class (DSCP + ECN) slot `i` arrived with (IP_RECVTOS / IPV6_RECVTCLASS), or -1. */
  trafficClass(i: number): number;
  /** The TTL / hop limit slot `i` arrived with (IP_RECVTTL / IPV6_RECVHOPLIMIT), or -1. */
  hopLimit(i: number): number;
  /**
   * Drain the socket's error queue (MSG_ERRQUEUE: ICMP and local errors reported through
   * IP_RECVERR), telling `onError` of each; returns how many were taken. Without this, a pending
   * error keeps the fd ready forever. The ring's slots are reused: read what they hold first.
   */
  receiveErrors(fd: number, onError?: (e: QueuedError) => void): number;
}

/**
 * Allocate a receive ring.
 * @example const ring = createRecvRing({ slots: 32, slotSize: 2048 });
 */
export function createRecvRing(options: RecvRingOptions = {}): RecvRing {
  const slots = options.slots ?? 32;
  const slotSize = options.slotSize ?? 65536;
  const headroom = ((options.headroom ?? 0) + 7) & ~7;
  const { memory, words, base, nameAt, controlAt, slotAt, stride, slotViews, vectors } = layOut(slots, slotSize, headroom);
  const hdrAt = 0;
  const dirty = lengthResetter(words);
  const receive = (fd: number, from = 0, count = slots - from): number => {
    dirty.reset(from, from + count);
    meta.slot = -1;
    const n = libc.recvmmsg(fd, vectors[from]!, count, MSG_DONTWAIT, null);
    if (n < 0) {
      if (errno() === EAGAIN) return 0;
      throw lastError("recvmmsg", fd);
    }
    dirty.mark(from, n);
    return n;
  };

  const length = (i: number) => Math.min(words[(hdrAt + i * MMSGHDR_SIZE + 56) >>> 2]!, slotSize);
  const flags = (i: number) => words[(hdrAt + i * MMSGHDR_SIZE + 48) >>> 2]!;

  // One walk over a slot's cmsg chain answers every accessor: the last slot walked is remembered
  // (a coalesced read is asked once per datagram in it, a reply for its class and TTL besides).
  const meta: SlotMeta = { slot: -1, dstAt: -1, drops: 0, segment: 0, tclass: -1, hops: -1, errorAt: -1 };
  const scan = (i: number): void => {
    if (i === meta.slot) return;
    scanControl(meta, memory, words, words[(hdrAt + i * MMSGHDR_SIZE + 40) >>> 2]!, controlAt + i * CONTROL_SIZE);
    meta.slot = i;
    // A coalesced read of one datagram says its own length: one datagram all the same.
    if (meta.segment >= length(i)) meta.segment = 0;
  };
  const segmentSize = (i: number): number => (scan(i), meta.segment);
  const datagramCount = (i: number): number => {
    const size = segmentSize(i);
    return size === 0 ? 1 : Math.ceil(length(i) / size);
  };
  const datagram = (i: number, k: number): Uint8Array => {
    const size = segmentSize(i);
    const end = headroom + length(i);
    if (size === 0) return slotViews[i]!.subarray(headroom, end);
    const at = headroom + k * size;
    return slotViews[i]!.subarray(at, Math.min(at + size, end));
  };
  const originalDestination = (i: number): SocketAddress | undefined => (scan(i), meta.dstAt < 0 ? undefined : decodeSockaddr(memory, meta.dstAt));

  const errorQueue: ErrorQueueReader = { slots, memory, words, nameAt, vectors, dirty, meta, scan };
  const receiveErrors = (fd: number, onError?: (e: QueuedError) => void): number => drainErrorQueue(errorQueue, fd, onError);
  return {
    slots,
    slotSize,
    headroom,
    memory,
    slotViews,
    receive,
    length,
    truncated: (i) => (flags(i) & MSG_TRUNC) !== 0,
    payload: (i) => slotViews[i]!.subarray(headroom, headroom + length(i)),
    source: (i) => decodeSockaddr(memory, nameAt + i * SOCKADDR_STORAGE_SIZE),
    sourceOffset: (i) => nameAt + i * SOCKADDR_STORAGE_SIZE,
    originalDestination,
    originalDestinationOffset: (i) => (scan(i), meta.dstAt),
    dropCount: (i) => (scan(i), meta.drops),
    segmentSize,
    datagramCount,
    datagram,
    receiveErrors,
    trafficClass: (i) => (scan(i), meta.tclass),
    hopLimit: (i) => (scan(i), meta.hops),
    payloadAddress: (i) => base + slotAt + i * stride + headroom,
    baseAddress: base,
  };
}

/**
 * The kernel rewrites msg_namelen and msg_controllen of the slots it fills: they get their full
 * sizes back before the next recvmmsg into them, only where an earlier receive wrote.
 */
function lengthResetter(words: Uint32Array): ReturnType<typeof createDirtyRange> {
  return createDirtyRange((i) => {
    const w = (i * MMSGHDR_SIZE) >>> 2;
    words[w + 2] = SOCKADDR_STORAGE_SIZE;
    words[w + 10] = CONTROL_SIZE;
    words[w + 11] = 0;
  });
}

/** What reading a socket's error queue into the ring needs of it. */
interface ErrorQueueReader {
  readonly slots: number;
  readonly memory: Uint8Array;
  readonly words: Uint32Array;
  readonly nameAt: number;
  readonly vectors: readonly Uint8Array[];
  readonly dirty: ReturnType<typeof createDirtyRange>;
  readonly meta: SlotMeta;
  readonly scan: (i: number) => void;
}

/** {@link RecvRing.receiveErrors}: recvmmsg(MSG_ERRQUEUE) until the queue is empty. */
function drainErrorQueue(q: ErrorQueueReader, fd: number, onError?: (e: QueuedError) => void): number {
  const { slots, memory, words, meta } = q;
  let total = 0;
  for (;;) {
    q.dirty.reset(0, slots);
    meta.slot = -1;
    const n = libc.recvmmsg(fd, q.vectors[0]!, slots, MSG_DONTWAIT | MSG_ERRQUEUE, null);
    if (n <= 0) return total;
    q.dirty.mark(0, n);
    total += n;
    if (!onError) continue;
    for (let i = 0; i < n; i++) {
      q.scan(i);
      if (meta.errorAt < 0) continue;
      const hasName = words[(i * MMSGHDR_SIZE + 8) >>> 2]! > 0;
      onError(decodeQueuedError(memory, words, meta.errorAt, hasName ? decodeSockaddr(memory, q.nameAt + i * SOCKADDR_STORAGE_SIZE) : undefined));
    }
  }
}

/**
 * The ring's one ArrayBuffer: mmsghdrs, iovecs, sockaddrs, control buffers, then the slots. The
 * pointers are written once (the ring never moves); per call only namelen and controllen are reset.
 */
function layOut(slots: number, slotSize: number, headroom: number) {
  const stride = (headroom + slotSize + 7) & ~7;
  const m = layOutMessages({ slots, iovBytes: IOVEC_SIZE, controlBytes: CONTROL_SIZE, slotBytes: stride });
  const { memory, words, base, put64, iovAt, slotAt } = m;
  for (let i = 0; i < slots; i++) {
    const h = i * MMSGHDR_SIZE;
    words[(h + 8) >>> 2] = SOCKADDR_STORAGE_SIZE; // msg_namelen
    put64(h + 40, CONTROL_SIZE); // msg_controllen
    const v = iovAt + i * IOVEC_SIZE;
    put64(v, base + slotAt + i * stride + headroom); // iov_base
    put64(v + 8, slotSize); // iov_len
  }
  return {
    ...m,
    stride,
    slotViews: Array.from({ length: slots }, (_, i) => memory.subarray(slotAt + i * stride, slotAt + i * stride + headroom + slotSize)),
  };
}

/** What the cmsg chain of one slot says. */
interface SlotMeta {
  /** The slot these are for (-1: none yet). */
  slot: number;
  dstAt: number;
  drops: number;
  segment: number;
  tclass: number;
  hops: number;
  errorAt: number;
}

/** Walk the control messages at `memory[start]` (`controlLength` bytes) into `m`. */
function scanControl(m: SlotMeta, memory: Uint8Array, words: Uint32Array, controlLength: number, start: number): void {
  m.dstAt = -1;
  m.drops = 0;
  m.segment = 0;
  m.tclass = -1;
  m.hops = -1;
  m.errorAt = -1;
  // cmsg_len (size_t) @0, cmsg_level @8, cmsg_type @12, data @16, each 8-aligned.
  for (let at = 0; at + 16 <= controlLength;) {
    const len = words[(start + at) >>> 2]!;
    if (len < 16) break;
    const level = words[(start + at + 8) >>> 2]!;
    const type = words[(start + at + 12) >>> 2]!;
    const data = start + at + 16;
    if (level === SOL_IP) {
      if (type === IP_ORIGDSTADDR) m.dstAt = data;
      else if (type === IP_TOS) m.tclass = memory[data]!; // one byte
      else if (type === IP_TTL) m.hops = words[data >>> 2]!;
      else if (type === IP_RECVERR) m.errorAt = data;
    } else if (level === SOL_IPV6) {
      if (type === IPV6_ORIGDSTADDR) m.dstAt = data;
      else if (type === IPV6_TCLASS) m.tclass = words[data >>> 2]! & 0xff;
      else if (type === IPV6_HOPLIMIT) m.hops = words[data >>> 2]!;
      else if (type === IPV6_RECVERR) m.errorAt = data;
    } else if (level === SOL_SOCKET && type === SO_RXQ_OVFL) m.drops = words[data >>> 2]!;
    else if (level === SOL_UDP && type === UDP_GRO) m.segment = words[data >>> 2]!;
    at += (len + 7) & ~7;
  }
}

/** The struct sock_extended_err at `memory[at]` (ee_errno u32, ee_origin u8, ee_type u8, ee_code u8, pad, ee_info u32, ee_data u32). */
function decodeQueuedError(memory: Uint8Array, words: Uint32Array, at: number, destination: SocketAddress | undefined): QueuedError {
  const origin = memory[at + 4]!;
  return {
    origin: origin === SO_EE_ORIGIN_LOCAL ? "local" : origin === SO_EE_ORIGIN_ICMP ? "icmp" : origin === SO_EE_ORIGIN_ICMP6 ? "icmp6" : "other",
    code: errnoName(words[at >>> 2]!),
    icmpType: memory[at + 5]!,
    icmpCode: memory[at + 6]!,
    info: words[(at + 8) >>> 2]!,
    destination,
  };
}

/**
 * Which slots the kernel may have written since they were last reset: [from, to), a superset
 * (resetting a clean slot is harmless), so a receive resets only what earlier receives wrote — a
 * few slots per call, not the whole ring, when sessions gather into it.
 */
function createDirtyRange(resetSlot: (i: number) => void): { reset(from: number, to: number): void; mark(from: number, n: number): void } {
  let dirtyFrom = 0;
  let dirtyTo = 0;
  return {
    reset(from, to) {
      const lo = Math.max(from, dirtyFrom);
      const hi = Math.min(to, dirtyTo);
      if (lo >= hi) return;
      for (let i = lo; i < hi; i++) resetSlot(i);
      if (hi === dirtyTo) dirtyTo = lo; // the tail is clean (lo ≥ dirtyFrom), or all of it
      else if (lo === dirtyFrom) dirtyFrom = hi;
    },
    mark(from, n) {
      if (n <= 0) return;
      if (dirtyFrom >= dirtyTo) {
        dirtyFrom = from;
        dirtyTo = from + n;
      } else {
        dirtyFrom = Math.min(dirtyFrom, from);
        dirtyTo = Math.max(dirtyTo, from + n);
      }
    },
  };
}
