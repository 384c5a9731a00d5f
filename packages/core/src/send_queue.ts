/**
 * A bounded FIFO of datagrams waiting for a socket to become writable. Payloads are copied on the
 * way in, because the caller may reuse its buffer as soon as `send` returns; TOS and TTL stay with
 * them, so a datagram that waited leaves as it would have.
 * @module
 */
import type { Datagram } from "./transport.ts";

/** The queue every transport uses for back-pressure. */
export interface SendQueue {
  /** Datagrams waiting. */
  readonly length: number;
  /** Payload bytes waiting. */
  readonly bytes: number;
  /** Enqueue a copy; false (nothing kept) when the bound is reached. */
  push(d: Datagram): boolean;
  /** The oldest datagram, or undefined. */
  peek(): Datagram | undefined;
  /** The oldest `n` (or fewer) datagrams, oldest first, without removing them. */
  head(n: number): Datagram[];
  /** Remove the oldest `n` datagrams. */
  drop(n: number): void;
  /** Remove everything; returns how many were removed. */
  clear(): number;
}

/**
 * Create a queue holding at most `limit` datagrams.
 * @example const q = createSendQueue(4096); if (!q.push(d)) countDrop(stats, "queue-full");
 */
export function createSendQueue(limit: number): SendQueue {
  let items: Datagram[] = [];
  let head = 0;
  let bytes = 0;
  return {
    get length() {
      return items.length - head;
    },
    get bytes() {
      return bytes;
    },
    push(d) {
      if (items.length - head >= limit) return false;
      items.push({ src: d.src, dst: d.dst, payload: d.payload.slice(), tos: d.tos, ttl: d.ttl });
      bytes += d.payload.length;
      return true;
    },
    peek: () => items[head],
    head: (n) => items.slice(head, head + n),
    drop(n) {
      for (let i = 0; i < n && head < items.length; i++) bytes -= items[head++]!.payload.length;
      // Compact once the consumed prefix dominates, keeping push/drop amortised O(1).
      if (head > 1024 && head * 2 > items.length) {
        items = items.slice(head);
        head = 0;
      }
    },
    clear() {
      const n = items.length - head;
      items = [];
      head = 0;
      bytes = 0;
      return n;
    },
  };
}
