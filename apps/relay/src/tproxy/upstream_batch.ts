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
import { createSendRing, isPendingIcmpError, linux, type RecvRing } from "@anysrc/sys";
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

/**
 * A batch for receive rings of `slots` slots.
 * @example const up = createUpstreamBatch({ slots: 32, restricted: false, offload: true, segmentMtu: 1500, onOffloadFallback }, counters);
 */
export function createUpstreamBatch(o: UpstreamBatchOptions, c: RelayCounters): UpstreamBatch {
  const slots = o.slots;
  // A coalesced read that must leave plainly is cut into one message per segment: room for that.
  const ring = createSendRing({ slots: Math.max(slots, UDP_GSO_MAX_SEGMENTS), headerSize: 8, iovecs: slots });
  const batchSession: (Session | undefined)[] = new Array<Session | undefined>(slots).fill(undefined);
  const batchDstAt = new Int32Array(slots);
  const batchDstKey = new Float64Array(slots);
  const batchTos = new Int16Array(slots);
  const batchTtl = new Int16Array(slots);
  // Slots in session order (a counting sort), then per message: datagrams in it and its destination key.
  const order = new Int32Array(slots);
  const perMessage = new Int32Array(ring.slots);
  const messageDstKey = new Float64Array(ring.slots);
  const touched: Session[] = [];
  let touchedCount = 0;
  let told = false;

  /** sendmmsg messages [0, count) of the send ring on `s`'s socket; false when a GSO send was refused before any went. */
  const sendMessages = (s: Session, count: number): boolean => {
    let retried = false;
    for (let done = 0; done < count;) {
      const k = ring.send(s.fd, done, count - done);
      if (k > 0) {
        retried = false;
        for (let m = done; m < done + k; m++) {
          const n = perMessage[m]!;
          c.forwarded += n;
          if (n > 1) c.coalescedForwarded += n;
          if (o.restricted) (s.contacted ??= new Set()).add(messageDstKey[m]!);
        }
        done += k;
        continue;
      }
      if (-k === linux.EAGAIN || -k === linux.ENOBUFS) {
        let left = 0;
        for (let m = done; m < count; m++) left += perMessage[m]!;
        countRelayDrop(c, "upstream-busy", left);
        return true;
      }
      if (perMessage[done]! > 1 || ringSegmented[done] === 1) {
        // The kernel refused a GSO send (EMSGSIZE: a segment over the route MTU; EIO, EINVAL): this
        // session sends plainly from now on, starting with what is left of this batch.
        s.gso = false;
        c.offloadFallbacks++;
        if (!told) {
          told = true;
          o.onOffloadFallback(`upstream: a GSO send was refused (${errnoName(-k)}); that session sends plainly`);
        }
        resume = done;
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
  };
  let resume = 0;
  // Messages that carry a coalesced read as it came (one iovec, a segment size).
  const ringSegmented = new Uint8Array(ring.slots);

  // Where the last layOut stopped in `order`: a coalesced read cut into one message per datagram
  // may not fit the messages left in the send ring, so a session's slots can take several rounds.
  let laidTo = 0;

  /**
   * Lay `s`'s slots order[from, to) out as messages from message 0, as many as the send ring holds;
   * returns the message count, and `laidTo` the slot after the last one laid out.
   */
  const layOut = (recv: RecvRing, s: Session, from: number, to: number): number => {
    const memory = recv.memory;
    const gso = o.offload && s.gso;
    let m = 0;
    let j = from;
    for (; j < to;) {
      const i = order[j]!;
      const dstAt = batchDstAt[i]!;
      const length = recv.length(i);
      const segment = recv.segmentSize(i);
      if (segment > 0 && !gso && m > 0 && m + Math.ceil(length / segment) > ring.slots) break;
      const family = memory[dstAt] === linux.AF_INET ? 4 : 6;
      const tos = batchTos[i]!;
      const ttl = batchTtl[i]!;
      ring.setDestinationAt(m, recv.baseAddress + dstAt, family === 4 ? 16 : 28);
      ring.setIpFields(m, family, tos > 0 ? tos : -1, ttl);
      messageDstKey[m] = batchDstKey[i]!;
      if (segment > 0) {
        const count = Math.ceil(length / segment);
        if (gso) {
          // Coalesced in, coalesced out: the read as it lies, cut again by the kernel.
          ring.setSingle(m, recv.payloadAddress(i), length);
          ring.setSegmentSize(m, segment);
          ringSegmented[m] = 1;
          perMessage[m++] = count;
        } else {
          // The ring has room for the kernel's most (UDP_GRO coalesces up to 64); past it, counted.
          const cut = Math.min(count, ring.slots - m);
          if (cut < count) countRelayDrop(c, "upstream-error", count - cut);
          for (let k = 0; k < cut; k++) {
            if (k > 0) {
              ring.setDestinationAt(m, recv.baseAddress + dstAt, family === 4 ? 16 : 28);
              ring.setIpFields(m, family, tos > 0 ? tos : -1, ttl);
              messageDstKey[m] = batchDstKey[i]!;
            }
            ring.setSingle(m, recv.payloadAddress(i) + k * segment, Math.min(segment, length - k * segment));
            ring.setSegmentSize(m, 0);
            ringSegmented[m] = 0;
            perMessage[m++] = 1;
          }
        }
        j++;
        continue;
      }
      // A run: the next slots of this session to the same destination, the same size (the last may be shorter).
      let n = 1;
      let total = length;
      const headers = family === 4 ? 28 : 48;
      if (gso && length > 0 && length + headers <= o.segmentMtu) {
        while (j + n < to && n < UDP_GSO_MAX_SEGMENTS) {
          const next = order[j + n]!;
          const len = recv.length(next);
          if (batchDstKey[next] !== batchDstKey[i] || recv.segmentSize(next) > 0 || len === 0 || len > length || total + len > 65507) break;
          if (batchTos[next] !== tos || batchTtl[next] !== ttl) break; // one header's class and TTL for every segment
          n++;
          total += len;
          if (len < length) break;
        }
      }
      if (n === 1) ring.setSingle(m, recv.payloadAddress(i), length);
      else {
        for (let k = 0; k < n; k++) {
          const slot = order[j + k]!;
          ring.setIovec(m, k, recv.payloadAddress(slot), recv.length(slot));
        }
        ring.setIovecCount(m, n);
      }
      ring.setSegmentSize(m, n > 1 ? length : 0);
      ringSegmented[m] = 0;
      perMessage[m++] = n;
      j += n;
      if (m === ring.slots) break;
    }
    laidTo = j;
    return m;
  };

  return {
    add(s, i, dstAt, dstKey, tos, ttl) {
      if (s.batchCount++ === 0) touched[touchedCount++] = s;
      batchSession[i] = s;
      batchDstAt[i] = dstAt;
      batchDstKey[i] = dstKey;
      batchTos[i] = tos;
      batchTtl[i] = ttl;
    },
    flush(recv, from, to) {
      if (touchedCount === 0) return;
      // A counting sort by session: each session's slots contiguous in `order`, in arrival order.
      let at = 0;
      for (let k = 0; k < touchedCount; k++) {
        const s = touched[k]!;
        s.batchStart = at;
        at += s.batchCount;
        s.batchCount = 0;
      }
      for (let i = from; i < to; i++) {
        const s = batchSession[i];
        if (s === undefined) continue;
        batchSession[i] = undefined;
        order[s.batchStart + s.batchCount++] = i;
      }
      for (let k = 0; k < touchedCount; k++) {
        const s = touched[k]!;
        const end = s.batchStart + s.batchCount;
        s.batchCount = 0;
        for (let j = s.batchStart; j < end;) {
          const start = j;
          const sent = sendMessages(s, layOut(recv, s, start, end));
          j = laidTo;
          if (sent) continue;
          // A GSO send was refused: messages before `resume` went; the rest is laid out again, plainly.
          j = start;
          for (let m = 0; m < resume; m++) j += ringSegmented[m] === 1 ? 1 : perMessage[m]!;
        }
      }
      touchedCount = 0;
    },
  };
}
