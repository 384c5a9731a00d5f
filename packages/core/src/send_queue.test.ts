import { describe, expect, it } from "vitest";
import { parseSocketAddress } from "./address.ts";
import { createSendQueue } from "./send_queue.ts";

const src = parseSocketAddress("198.19.2.2:7000");
const dst = parseSocketAddress("198.18.1.2:40000");
const datagram = (fill: number, size: number, extra: { tos?: number; ttl?: number } = {}) => ({ src, dst, payload: new Uint8Array(size).fill(fill), ...extra });

describe("send queue: the bounded FIFO of datagrams waiting for writability", () => {
  it("keeps a copy of each payload, its TOS and TTL: the caller may reuse its buffer at once", () => {
    const q = createSendQueue(4);
    const d = datagram(7, 3, { tos: 0xb8, ttl: 9 });
    expect(q.push(d)).toBe(true);
    d.payload.fill(0);
    expect(q.peek()).toMatchObject({ src, dst, tos: 0xb8, ttl: 9 });
    expect([...q.peek()!.payload]).toEqual([7, 7, 7]);
  });

  it("refuses past its bound, keeping nothing of the refused one, and counts bytes", () => {
    const q = createSendQueue(2);
    expect([q.push(datagram(1, 10)), q.push(datagram(2, 20)), q.push(datagram(3, 30))]).toEqual([true, true, false]);
    expect({ length: q.length, bytes: q.bytes }).toEqual({ length: 2, bytes: 30 });
  });

  it("hands out the oldest first, and drop removes exactly what was sent, over many compactions", () => {
    const q = createSendQueue(100_000);
    for (let i = 0; i < 5000; i++) q.push(datagram(i & 0xff, 1 + (i % 3)));
    let next = 0;
    while (q.length > 0) {
      const batch = q.head(37);
      expect(batch.map((d) => d.payload[0])).toEqual(Array.from({ length: batch.length }, (_, k) => (next + k) & 0xff));
      q.drop(batch.length);
      next += batch.length;
    }
    expect({ next, bytes: q.bytes, peek: q.peek() }).toEqual({ next: 5000, bytes: 0, peek: undefined });
  });

  it("clear empties it and says how many it held", () => {
    const q = createSendQueue(10);
    for (let i = 0; i < 4; i++) q.push(datagram(i, 5));
    q.drop(1);
    expect(q.clear()).toBe(3);
    expect({ length: q.length, bytes: q.bytes }).toEqual({ length: 0, bytes: 0 });
  });
});
