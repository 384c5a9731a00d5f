/**
 * Batched send: sendmmsg from one preallocated ArrayBuffer holding every mmsghdr, destination
 * sockaddr, iovecs (two per message by default), a header slot and a control slot per message. A raw
 * sender puts the IP+UDP header in the slot (iovec 0) and points iovec 1 at the payload where it
 * already lies: no copy. A GSO sender points many iovecs at many payloads and gives the message a
 * segment size (UDP_SEGMENT): the kernel sends them as that many datagrams.
 * @module
 */
import type { SocketAddress } from "@anysrc/core";
import { adapter, errno, libc } from "./libc.ts";
import { IP_TOS, IP_TTL, IPV6_HOPLIMIT, IPV6_TCLASS, SOL_IP, SOL_IPV6, SOL_UDP, UDP_SEGMENT } from "./linux_constants.ts";
import { encodeSockaddr, SOCKADDR_STORAGE_SIZE } from "./sockaddr.ts";
import { IOVEC_SIZE, layOutMessages, MMSGHDR_SIZE } from "./message_memory.ts";

// Per message up to three control messages, CMSG_SPACE(2 or 4) = 24 bytes each: UDP_SEGMENT (a GSO
// send), IP_TOS / IPV6_TCLASS and IP_TTL / IPV6_HOPLIMIT (a datagram's own class and TTL).
const CMSG_SPACE = 24;
const CONTROL_SIZE = 3 * CMSG_SPACE;

/** Sizes of a {@link SendRing}. */
export interface SendRingOptions {
  /** Messages per sendmmsg; default 32 (the kernel caps one call at UIO_MAXIOV = 1024). */
  readonly slots?: number;
  /** Bytes of per-message header slot (8-aligned); default 64, room for IPv6 + UDP + Fragment. */
  readonly headerSize?: number;
  /** Iovecs per message; default 2 (header + payload). A GSO sender wants one per segment (64). */
  readonly iovecs?: number;
}

/** A sendmmsg ring. Fill messages 0..n-1, then `send(fd, n)`. */
export interface SendRing {
  readonly slots: number;
  readonly headerSize: number;
  /** Per message, a view of its header slot (iovec 0 when used). */
  readonly headers: readonly Uint8Array[];
  /** Set the destination of message `i`; `port` overrides (0 for IPv6 raw sockets). */
  setDestination(i: number, dst: SocketAddress, port?: number): void;
  /** Send message `i` to the sockaddr of `length` bytes at native `address` (e.g. in a receive ring): no copy. */
  setDestinationAt(i: number, address: number, length: number): void;
  /** Send message `i` to the socket's connected peer (no msg_name). */
  clearDestination(i: number): void;
  /** Message `i` = its header slot's first `headerLength` bytes, then `payloadLength` bytes at `payloadAddress`. */
  setHeaderAndPayload(i: number, headerLength: number, payloadAddress: number, payloadLength: number): void;
  /** Message `i` = `length` bytes at `address` (one iovec). */
  setSingle(i: number, address: number, length: number): void;
  /** Message `i` = the first `length` bytes of its header slot (a whole packet built there). */
  setFromHeaderSlot(i: number, length: number): void;
  /** Iovec `k` of message `i` = `length` bytes at `address`; then {@link setIovecCount}. */
  setIovec(i: number, k: number, address: number, length: number): void;
  /** Message `i` gathers its first `count` iovecs. */
  setIovecCount(i: number, count: number): void;
  /**
   * Send message `i` as datagrams of `size` bytes each, the last one possibly shorter (a UDP_SEGMENT
   * cmsg: UDP GSO); 0 sends it as one datagram. Sticks to the slot until changed.
   */
  setSegmentSize(i: number, size: number): void;
  /**
   * Send message `i` with this TOS byte / traffic class (IP_TOS or IPV6_TCLASS cmsg, `family` picks
   * which) and TTL / hop limit (IP_TTL or IPV6_HOPLIMIT); -1 leaves the socket's own. Sticks to the
   * slot until changed, like the segment size.
   */
  setIpFields(i: number, family: 4 | 6, trafficClass: number, hopLimit: number): void;
  /**
   * sendmmsg of messages `from` .. `from + count - 1`. Returns how many the kernel took, or `-errno`
   * when it took none (EAGAIN/ENOBUFS: queue and retry on writability).
   */
  send(fd: number, from: number, count: number): number;
  /** Native address of a view's first byte (for `payloadAddress`). */
  addressOf(view: Uint8Array): number;
}

/**
 * Allocate a send ring.
 * @example const ring = createSendRing({ slots: 32 });
 */
export function createSendRing(options: SendRingOptions = {}): SendRing {
  const slots = options.slots ?? 32;
  const headerSize = ((options.headerSize ?? 64) + 7) & ~7;
  const perMessage = Math.max(2, options.iovecs ?? 2);
  const { memory, words, base, iovAt, iovStride, nameAt, slotAt, headers, vectors, put64, control } = layOutSendRing(slots, headerSize, perMessage);
  const hdrAt = 0;
  const destinations = destinationSetters(slots, memory, words, base + nameAt, nameAt, put64);

  return {
    slots,
    headerSize,
    headers,
    ...destinations,
    setHeaderAndPayload(i, headerLength, payloadAddress, payloadLength) {
      const v = iovAt + i * iovStride;
      put64(v, base + slotAt + i * headerSize);
      put64(v + 8, headerLength);
      put64(v + 16, payloadAddress);
      put64(v + 24, payloadLength);
      put64(hdrAt + i * MMSGHDR_SIZE + 24, payloadLength > 0 ? 2 : 1);
    },
    setSingle(i, address, length) {
      const v = iovAt + i * iovStride;
      put64(v, address);
      put64(v + 8, length);
      put64(hdrAt + i * MMSGHDR_SIZE + 24, 1);
    },
    setFromHeaderSlot(i, length) {
      const v = iovAt + i * iovStride;
      put64(v, base + slotAt + i * headerSize);
      put64(v + 8, length);
      put64(hdrAt + i * MMSGHDR_SIZE + 24, 1);
    },
    setIovec(i, k, address, length) {
      const v = iovAt + i * iovStride + k * IOVEC_SIZE;
      put64(v, address);
      put64(v + 8, length);
    },
    setIovecCount(i, count) {
      put64(hdrAt + i * MMSGHDR_SIZE + 24, count);
    },
    setSegmentSize(i, size) {
      if (control.segmentSizes[i] === size) return;
      control.segmentSizes[i] = size;
      control.layOut(i);
    },
    setIpFields(i, family, trafficClass, hopLimit) {
      const c = control;
      if (c.classes[i] === trafficClass && c.hopLimits[i] === hopLimit && (c.families[i] === family || (trafficClass < 0 && hopLimit < 0))) return;
      c.classes[i] = trafficClass;
      c.hopLimits[i] = hopLimit;
      c.families[i] = family;
      c.layOut(i);
    },
    send(fd, from, count) {
      const n = libc.sendmmsg(fd, vectors[from]!, count, 0);
      return n >= 0 ? n : -errno();
    },
    addressOf: (view) => adapter.addressOf(view),
  };
}

/**
 * The destination setters of a send ring whose sockaddrs lie at `nameAt` in `memory` (native
 * address `nameBase`).
 */
function destinationSetters(
  slots: number,
  memory: Uint8Array,
  words: Uint32Array,
  nameBase: number,
  nameAt: number,
  put64: (at: number, value: number) => void,
): Pick<SendRing, "setDestination" | "setDestinationAt" | "clearDestination"> {
  const slotDst: (SocketAddress | undefined)[] = new Array<SocketAddress | undefined>(slots).fill(undefined);
  const slotPort = new Int32Array(slots);
  return {
    setDestination(i, dst, port) {
      // A slot keeps the sockaddr it was last given: the same record (and port) again — a session's
      // replies, a sender's stream — costs no encoding. Address records are not mutated once made.
      const p = port ?? dst.port;
      if (slotDst[i] === dst && slotPort[i] === p) return;
      const h = i * MMSGHDR_SIZE;
      put64(h, nameBase + i * SOCKADDR_STORAGE_SIZE);
      words[(h + 8) >>> 2] = encodeSockaddr(dst, memory, nameAt + i * SOCKADDR_STORAGE_SIZE, p);
      slotDst[i] = dst;
      slotPort[i] = p;
    },
    setDestinationAt(i, address, length) {
      const h = i * MMSGHDR_SIZE;
      put64(h, address);
      words[(h + 8) >>> 2] = length;
      slotDst[i] = undefined;
    },
    clearDestination(i) {
      const h = i * MMSGHDR_SIZE;
      put64(h, 0);
      words[(h + 8) >>> 2] = 0;
      slotDst[i] = undefined;
    },
  };
}

/** The ring's one ArrayBuffer: mmsghdrs, iovecs, sockaddrs, control buffers, then the header slots; pointers written once. */
function layOutSendRing(slots: number, headerSize: number, perMessage: number) {
  const iovStride = perMessage * IOVEC_SIZE;
  const m = layOutMessages({ slots, iovBytes: iovStride, controlBytes: CONTROL_SIZE, slotBytes: headerSize });
  const { memory, words, base, put64, iovAt, nameAt, controlAt, slotAt, vectors } = m;
  // msg_namelen and msg_controllen stay 0 until a destination, segment size, class or TTL is set.
  for (let i = 0; i < slots; i++) put64(iovAt + i * iovStride, base + slotAt + i * headerSize); // iovec 0: the header slot
  return {
    memory,
    words,
    base,
    iovAt,
    iovStride,
    nameAt,
    slotAt,
    put64,
    headers: Array.from({ length: slots }, (_, i) => memory.subarray(slotAt + i * headerSize, slotAt + (i + 1) * headerSize)),
    vectors,
    control: createControlSlots(slots, words, controlAt, put64),
  };
}

/**
 * Each message's control messages — UDP_SEGMENT, and the class and TTL as IP_TOS/IPV6_TCLASS and
 * IP_TTL/IPV6_HOPLIMIT — remembered per slot and written only when they change.
 */
function createControlSlots(slots: number, words: Uint32Array, controlAt: number, put64: (at: number, value: number) => void) {
  const segmentSizes = new Uint16Array(slots);
  const classes = new Int16Array(slots).fill(-1);
  const hopLimits = new Int16Array(slots).fill(-1);
  const families = new Uint8Array(slots).fill(4);
  const putCmsg = (at: number, level: number, type: number, dataLength: number, value: number): number => {
    put64(at, 16 + dataLength); // cmsg_len = CMSG_LEN(dataLength)
    words[(at + 8) >>> 2] = level;
    words[(at + 12) >>> 2] = type;
    words[(at + 16) >>> 2] = value; // host (little-endian) order: a u16 is its first two bytes
    return at + CMSG_SPACE;
  };
  return {
    segmentSizes,
    classes,
    hopLimits,
    families,
    /** Write message `i`'s control messages from its remembered values; controllen says how many. */
    layOut(i: number) {
      const c = controlAt + i * CONTROL_SIZE;
      let at = c;
      if (segmentSizes[i]! > 0) at = putCmsg(at, SOL_UDP, UDP_SEGMENT, 2, segmentSizes[i]!);
      const v6 = families[i] === 6;
      if (classes[i]! >= 0) at = putCmsg(at, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_TCLASS : IP_TOS, 4, classes[i]!);
      if (hopLimits[i]! >= 0) at = putCmsg(at, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_HOPLIMIT : IP_TTL, 4, hopLimits[i]!);
      put64(MMSGHDR_SIZE * i + 40, at - c);
    },
  };
}
