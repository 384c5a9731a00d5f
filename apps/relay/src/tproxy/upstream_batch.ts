/**
 * Client datagrams on their way upstream, one receive batch at a time: gathered per session, then
 * sent as one sendmmsg per session straight from the receive ring — msg_name points at the original
 * destination the kernel put in the control data, the iovec at the payload slot. For one busy
 * client that is one syscall for up to 32 datagrams, and nothing is copied or encoded. With offloads,
 * a run of same-size datagrams to one destination is one message of that sendmmsg (UDP_SEGMENT: the
 * kernel cuts it), and a read the kernel coalesced (UDP_GRO) leaves as it came, one GSO message.
 * @module
 */
import { errnoName, UDP_GSO_MAX_SEGMENTS } from "@anysrc/core";
import { createSendRing, isPendingIcmpError, linux, type RecvRing, type SendRing } from "@anysrc/sys";
import { countRelayDrop, type RelayCounters } from "../relay_stats.ts";
import type { Session } from "./session_table.ts";

/** One receive batch's datagrams bound upstream. */
export interface UpstreamBatch {
  /**
   * Slot `i` of the batch goes out of `s`'s socket to the original destination at `dstAt` (key
   * `dstKey`), with class `tos` (0: the socket's default) and TTL `ttl` (-1: the socket's default).
   */
  add(s: Session, i: number, dstAt: number, dstKey: number, tos: number, ttl: number): void;
  /**
   * Send what was added from slots [from, to) of `ring`, counting what went (`forwarded`) and what
   * the kernel refused (`upstream-busy`, `upstream-error`). Call it before anything that may close a
   * session socket (a new session can evict one).
   */
  flush(ring: RecvRing, from: number, to: number): void;
}

/** Settings of an {@link UpstreamBatch}. */
export interface UpstreamBatchOptions {
  /** Slots of the receive rings it is fed from. */
  readonly slots: number;
  /** Remember every remote sent to in its session's `contacted` set (what `--nat restricted` admits replies from). */
  readonly restricted: boolean;
  /** GSO sends where sizes allow (sessions whose kernel refused one send plainly). */
  readonly offload: boolean;
  /** Largest packet a GSO segment may make (segment + IP + UDP headers); bigger datagrams go alone. */
  readonly segmentMtu: number;
  /** Told once when the kernel first refuses a GSO send. */
  readonly onOffloadFallback: (reason: string) => void;
}

/** What one batch works with between receive and flush. */
interface UpstreamState {
  readonly o: UpstreamBatchOptions;
  readonly c: RelayCounters;
  readonly ring: SendRing;
  readonly batchSession: (Session | undefined)[];
  readonly batchDstAt: Int32Array;
  readonly batchDstKey: Float64Array;
  readonly batchTos: Int16Array;
  readonly batchTtl: Int16Array;
  /** Slots in session order (a counting sort). */
  readonly order: Int32Array;
  /** Per message: datagrams in it, its destination key, whether it carries a coalesced read as it came. */
  readonly perMessage: Int32Array;
  readonly messageDstKey: Float64Array;
  readonly segmented: Uint8Array;
  readonly touched: Session[];
  touchedCount: number;
  /** Whether the first GSO refusal was told. */
  told: boolean;
  /** After a refused GSO send: the first message that did not go. */
  resume: number;
  /**
   * Where the last layOut stopped in `order`: a coalesced read cut into one message per datagram
   * may not fit the messages left in the send ring, so a session's slots can take several rounds.
   */
  laidTo: number;
}

/**
 * A batch for receive rings of `slots` slots.
 * @example const up = createUpstreamBatch({ slots: 32, restricted: false, offload: true, segmentMtu: 1500, onOffloadFallback }, counters);
 */
export function createUpstreamBatch(o: UpstreamBatchOptions, c: RelayCounters): UpstreamBatch {
  const slots = o.slots;
  // A coalesced read that must leave plainly is cut into one message per segment: room for that.
  const ring = createSendRing({ slots: Math.max(slots, UDP_GSO_MAX_SEGMENTS), headerSize: 8, iovecs: slots });
  const st: UpstreamState = {
    o,
    c,
    ring,
    batchSession: new Array<Session | undefined>(slots).fill(undefined),
    batchDstAt: new Int32Array(slots),
    batchDstKey: new Float64Array(slots),
    batchTos: new Int16Array(slots),
    batchTtl: new Int16Array(slots),
    order: new Int32Array(slots),
    perMessage: new Int32Array(ring.slots),
    messageDstKey: new Float64Array(ring.slots),
    segmented: new Uint8Array(ring.slots),
    touched: [],
    touchedCount: 0,
    told: false,
    resume: 0,
    laidTo: 0,
  };
  return {
    add(s, i, dstAt, dstKey, tos, ttl) {
      if (s.batchCount++ === 0) st.touched[st.touchedCount++] = s;
      st.batchSession[i] = s;
      st.batchDstAt[i] = dstAt;
      st.batchDstKey[i] = dstKey;
      st.batchTos[i] = tos;
      st.batchTtl[i] = ttl;
    },
    flush: (recv, from, to) => flushBatch(st, recv, from, to),
  };
}

/** Every touched session's slots of [from, to), in arrival order, out of its socket. */
function flushBatch(st: UpstreamState, recv: RecvRing, from: number, to: number): void {
  if (st.touchedCount === 0) return;
  sortBySession(st, from, to);
  for (let k = 0; k < st.touchedCount; k++) {
    const s = st.touched[k]!;
    const end = s.batchStart + s.batchCount;
    s.batchCount = 0;
    for (let j = s.batchStart; j < end;) {
      const start = j;
      const sent = sendMessages(st, s, layOut(st, recv, s, start, end));
      j = st.laidTo;
      if (sent) continue;
      // A GSO send was refused: messages before `resume` went; the rest is laid out again, plainly.
      j = start;
      for (let m = 0; m < st.resume; m++) j += st.segmented[m] === 1 ? 1 : st.perMessage[m]!;
    }
  }
  st.touchedCount = 0;
}

/** A counting sort by session: each session's slots contiguous in `order`, in arrival order; `batchCount` its length. */
function sortBySession(st: UpstreamState, from: number, to: number): void {
  let at = 0;
  for (let k = 0; k < st.touchedCount; k++) {
    const s = st.touched[k]!;
    s.batchStart = at;
    at += s.batchCount;
    s.batchCount = 0;
  }
  for (let i = from; i < to; i++) {
    const s = st.batchSession[i];
    if (s === undefined) continue;
    st.batchSession[i] = undefined;
    st.order[s.batchStart + s.batchCount++] = i;
  }
}

/** sendmmsg messages [0, count) of the send ring on `s`'s socket; false when a GSO send was refused before any went. */
function sendMessages(st: UpstreamState, s: Session, count: number): boolean {
  const { ring, perMessage, c } = st;
  let retried = false;
  for (let done = 0; done < count;) {
    const k = ring.send(s.fd, done, count - done);
    if (k > 0) {
      retried = false;
      countSent(st, s, done, done + k);
      done += k;
      continue;
    }
    if (-k === linux.EAGAIN || -k === linux.ENOBUFS) {
      let left = 0;
      for (let m = done; m < count; m++) left += perMessage[m]!;
      countRelayDrop(c, "upstream-busy", left);
      return true;
    }
    if (perMessage[done]! > 1 || st.segmented[done] === 1) {
      refuseOffload(st, s, -k);
      st.resume = done;
      return false;
    }
    // An earlier ICMP error left pending on the socket (IP_RECVERR) fails this send and is cleared by
    // it: the message was not at fault, so it gets one more try.
    if (!retried && isPendingIcmpError(-k)) {
      retried = true;
      continue;
    }
    retried = false;
    // Any other error belongs to the first unsent message alone (sendmmsg reports it on the next call).
    countRelayDrop(c, "upstream-error", perMessage[done]!);
    done++;
  }
  return true;
}

/** Messages [from, to) went. */
function countSent(st: UpstreamState, s: Session, from: number, to: number): void {
  const c = st.c;
  for (let m = from; m < to; m++) {
    const n = st.perMessage[m]!;
    c.forwarded += n;
    if (n > 1) c.coalescedForwarded += n;
    if (st.o.restricted) (s.contacted ??= new Set()).add(st.messageDstKey[m]!);
  }
}

/**
 * The kernel refused a GSO send (EMSGSIZE: a segment over the route MTU; EIO, EINVAL): this session
 * sends plainly from now on, starting with what is left of this batch.
 */
function refuseOffload(st: UpstreamState, s: Session, errno: number): void {
  s.gso = false;
  st.c.offloadFallbacks++;
  if (st.told) return;
  st.told = true;
  st.o.onOffloadFallback(`upstream: a GSO send was refused (${errnoName(errno)}); that session sends plainly`);
}

/**
 * Lay `s`'s slots order[from, to) out as messages from message 0, as many as the send ring holds;
 * returns the message count, and `laidTo` the slot after the last one laid out.
 */
function layOut(st: UpstreamState, recv: RecvRing, s: Session, from: number, to: number): number {
  const ring = st.ring;
  const gso = st.o.offload && s.gso;
  let m = 0;
  let j = from;
  while (j < to) {
    const i = st.order[j]!;
    const segment = recv.segmentSize(i);
    if (segment > 0) {
      if (!gso && m > 0 && m + Math.ceil(recv.length(i) / segment) > ring.slots) break;
      m = layOutCoalesced(st, recv, i, m, gso);
      j++;
      continue;
    }
    const n = runLength(st, recv, j, to, gso);
    layOutRun(st, recv, j, n, m++);
    j += n;
    if (m === ring.slots) break;
  }
  st.laidTo = j;
  return m;
}

/** Message `m`'s destination (slot `i`'s), class and TTL. */
function setHeaderFields(st: UpstreamState, recv: RecvRing, i: number, m: number): void {
  const dstAt = st.batchDstAt[i]!;
  const family = recv.memory[dstAt] === linux.AF_INET ? 4 : 6;
  const tos = st.batchTos[i]!;
  st.ring.setDestinationAt(m, recv.baseAddress + dstAt, family === 4 ? 16 : 28);
  st.ring.setIpFields(m, family, tos > 0 ? tos : -1, st.batchTtl[i]!);
  st.messageDstKey[m] = st.batchDstKey[i]!;
}

/** A coalesced read (slot `i`) from message `m`: one GSO message, or one message per segment; returns the next message. */
function layOutCoalesced(st: UpstreamState, recv: RecvRing, i: number, m: number, gso: boolean): number {
  const { ring, perMessage } = st;
  const length = recv.length(i);
  const segment = recv.segmentSize(i);
  const count = Math.ceil(length / segment);
  if (gso) {
    // Coalesced in, coalesced out: the read as it lies, cut again by the kernel.
    setHeaderFields(st, recv, i, m);
    ring.setSingle(m, recv.payloadAddress(i), length);
    ring.setSegmentSize(m, segment);
    st.segmented[m] = 1;
    perMessage[m] = count;
    return m + 1;
  }
  // The ring has room for the kernel's most (UDP_GRO coalesces up to 64); past it, counted.
  const cut = Math.min(count, ring.slots - m);
  if (cut < count) countRelayDrop(st.c, "upstream-error", count - cut);
  for (let k = 0; k < cut; k++) {
    setHeaderFields(st, recv, i, m);
    ring.setSingle(m, recv.payloadAddress(i) + k * segment, Math.min(segment, length - k * segment));
    ring.setSegmentSize(m, 0);
    st.segmented[m] = 0;
    perMessage[m++] = 1;
  }
  return m;
}

/** How many slots from order[j] make one GSO message: the next slots to the same destination, the same size (the last may be shorter). */
function runLength(st: UpstreamState, recv: RecvRing, j: number, to: number, gso: boolean): number {
  const { order, batchDstKey, batchTos, batchTtl } = st;
  const i = order[j]!;
  const length = recv.length(i);
  const headers = recv.memory[st.batchDstAt[i]!] === linux.AF_INET ? 28 : 48;
  if (!gso || length === 0 || length + headers > st.o.segmentMtu) return 1;
  let n = 1;
  let total = length;
  while (j + n < to && n < UDP_GSO_MAX_SEGMENTS) {
    const next = order[j + n]!;
    const len = recv.length(next);
    if (batchDstKey[next] !== batchDstKey[i] || recv.segmentSize(next) > 0 || len === 0 || len > length || total + len > 65507) break;
    if (batchTos[next] !== batchTos[i] || batchTtl[next] !== batchTtl[i]) break; // one header's class and TTL for every segment
    n++;
    total += len;
    if (len < length) break;
  }
  return n;
}

/** Slots order[j, j + n) as message `m`: one datagram, or a GSO run of n. */
function layOutRun(st: UpstreamState, recv: RecvRing, j: number, n: number, m: number): void {
  const { ring, order } = st;
  const i = order[j]!;
  setHeaderFields(st, recv, i, m);
  if (n === 1) ring.setSingle(m, recv.payloadAddress(i), recv.length(i));
  else {
    for (let k = 0; k < n; k++) {
      const slot = order[j + k]!;
      ring.setIovec(m, k, recv.payloadAddress(slot), recv.length(slot));
    }
    ring.setIovecCount(m, n);
  }
  ring.setSegmentSize(m, n > 1 ? recv.length(i) : 0);
  st.segmented[m] = 0;
  st.perMessage[m] = n;
}
