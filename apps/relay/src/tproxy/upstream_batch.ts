/**
 * Client datagrams on their way upstream, one receive batch at a time: gathered per session, then
 * sent as one sendmmsg per session straight from the receive ring — msg_name points at the original
 * destination the kernel put in the control data, the iovec at the payload slot. For one busy
 * client that is one syscall for up to 32 datagrams, and nothing is copied or encoded.
 * @module
 */
import { type RecvRing, createSendRing, linux } from "@anysrc/sys";
import { type RelayCounters, countRelayDrop } from "../relay_stats.ts";
import type { Session } from "./session_table.ts";

/** One receive batch's datagrams bound upstream. */
export interface UpstreamBatch {
  /** Slot `i` of the batch goes out of `s`'s socket to the original destination at `dstAt` (key `dstKey`). */
  add(s: Session, i: number, dstAt: number, dstKey: number): void;
  /**
   * Send what was added from slots [from, to) of `ring`, counting what went (`forwarded`) and what
   * the kernel refused (`upstream-busy`, `upstream-error`). Call it before anything that may close a
   * session socket (a new session can evict one).
   */
  flush(ring: RecvRing, from: number, to: number): void;
}

/**
 * A batch for receive rings of `slots` slots; with `restricted`, every remote sent to is remembered
 * in its session's `contacted` set (what `--nat restricted` admits replies from).
 * @example const up = createUpstreamBatch(32, counters, false); up.add(s, i, dstAt, dstKey); up.flush(ring, 0, n);
 */
export function createUpstreamBatch(slots: number, c: RelayCounters, restricted: boolean): UpstreamBatch {
  const ring = createSendRing({ slots, headerSize: 8 });
  const batchSession: (Session | undefined)[] = new Array<Session | undefined>(slots).fill(undefined);
  const batchDstAt = new Int32Array(slots);
  const batchDstKey = new Float64Array(slots);
  const sendDstKey = new Float64Array(slots);
  const touched: Session[] = [];
  let touchedCount = 0;

  /** sendmmsg messages [from, from + count) of the send ring on `s`'s socket. */
  const sendRun = (s: Session, from: number, count: number) => {
    for (let done = 0; done < count; ) {
      const k = ring.send(s.fd, from + done, count - done);
      if (k > 0) {
        c.forwarded += k;
        if (restricted) {
          const set = (s.contacted ??= new Set());
          for (let m = from + done; m < from + done + k; m++) set.add(sendDstKey[m]!);
        }
        done += k;
        continue;
      }
      if (-k === linux.EAGAIN || -k === linux.ENOBUFS) {
        countRelayDrop(c, "upstream-busy", count - done);
        return;
      }
      // Any other error belongs to the first unsent message alone (sendmmsg reports it on the next call).
      countRelayDrop(c, "upstream-error");
      done++;
    }
  };

  return {
    add(s, i, dstAt, dstKey) {
      if (s.batchCount++ === 0) touched[touchedCount++] = s;
      batchSession[i] = s;
      batchDstAt[i] = dstAt;
      batchDstKey[i] = dstKey;
    },
    flush(recv, from, to) {
      if (touchedCount === 0) return;
      // A counting sort by session: each session's datagrams contiguous in the send ring, in order.
      let at = 0;
      for (let k = 0; k < touchedCount; k++) {
        const s = touched[k]!;
        s.batchStart = at;
        at += s.batchCount;
        s.batchCount = 0;
      }
      const memory = recv.memory;
      for (let i = from; i < to; i++) {
        const s = batchSession[i];
        if (s === undefined) continue;
        batchSession[i] = undefined;
        const j = s.batchStart + s.batchCount++;
        const dstAt = batchDstAt[i]!;
        ring.setDestinationAt(j, recv.baseAddress + dstAt, memory[dstAt] === linux.AF_INET ? 16 : 28);
        ring.setSingle(j, recv.payloadAddress(i), recv.length(i));
        sendDstKey[j] = batchDstKey[i]!;
      }
      for (let k = 0; k < touchedCount; k++) {
        const s = touched[k]!;
        sendRun(s, s.batchStart, s.batchCount);
        s.batchCount = 0;
      }
      touchedCount = 0;
    },
  };
}
