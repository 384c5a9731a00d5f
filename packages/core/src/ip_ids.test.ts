import { describe, expect, it } from "vitest";
import { createIpv4Ids } from "./ip_ids.ts";

describe("createIpv4Ids", () => {
  it("gives one destination 65 535 distinct non-zero IDs before any repeats", () => {
    const ids = createIpv4Ids();
    const dst = new Uint8Array([198, 18, 1, 2]);
    const seen = new Set<number>();
    for (let k = 0; k < 65535; k++) {
      const id = ids.next(dst);
      expect(id).not.toBe(0);
      seen.add(id);
    }
    expect(seen.size).toBe(65535);
  });

  it("reserves consecutive IDs for a run and never wraps one through 0", () => {
    const ids = createIpv4Ids(2, () => 0.9999); // both buckets start near the top
    const dst = new Uint8Array([198, 18, 0, 1]);
    const first = ids.next(dst, 16);
    expect(first + 15).toBeLessThanOrEqual(0xffff);
    expect(ids.next(dst, 1)).toBe(first + 16 > 0xffff ? 1 : first + 16);
  });

  it("keeps destinations apart: interleaved sends to two hosts each count on by one", () => {
    const ids = createIpv4Ids(4096, () => 0.5);
    const a = new Uint8Array([198, 18, 0, 1]);
    const b = new Uint8Array([198, 18, 0, 2]);
    const a0 = ids.next(a);
    const b0 = ids.next(b);
    expect(ids.next(a)).toBe(a0 + 1);
    expect(ids.next(b)).toBe(b0 + 1);
  });

  it("refuses a bucket count that is not a power of two", () => {
    expect(() => createIpv4Ids(1000)).toThrow(/power of two/);
  });
});
