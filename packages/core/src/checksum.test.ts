import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { finishChecksum, foldChecksum, sumBytes, udpChecksumValue, updateChecksum } from "./checksum.ts";

/** Reference: RFC 1071 byte-wise, no fast path. */
function referenceSum(bytes: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

describe("checksum", () => {
  it("matches the RFC 1071 §3 numerical example (sum ddf2, checksum 220d)", () => {
    const bytes = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    expect(sumBytes(bytes, 0, 8)).toBe(0xddf2);
    expect(finishChecksum(sumBytes(bytes, 0, 8))).toBe(0x220d);
  });

  it("the 32-bit word fast path equals the byte-wise sum at every alignment and length", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.integer({ min: 0, max: 7 }), (data, shift) => {
        const backing = new Uint8Array(data.length + 8);
        backing.set(data, shift);
        expect(sumBytes(backing, shift, shift + data.length)).toBe(referenceSum(data));
      }),
      { numRuns: 2000 },
    );
  });

  it("sums a full 64 KiB of 0xff without overflowing the accumulators", () => {
    const data = new Uint8Array(65536).fill(0xff);
    expect(sumBytes(data, 0, data.length)).toBe(0xffff);
  });

  it("folds sums beyond 32 bits with end-around carry", () => {
    expect(foldChecksum(0x1_0000_0000)).toBe(1);
    expect(foldChecksum(0x3_0002_0001)).toBe(6);
    expect(foldChecksum(0x1_ffff)).toBe(1);
  });

  it("RFC 1624 incremental update equals recomputation", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 60 }), fc.nat({ max: 9 }), fc.integer({ min: 0, max: 0xffff }), (data, word, value) => {
        const even = data.length & ~1;
        const bytes = data.slice(0, even);
        const before = finishChecksum(sumBytes(bytes, 0, even));
        const old = (bytes[2 * word]! << 8) | bytes[2 * word + 1]!;
        bytes[2 * word] = value >>> 8;
        bytes[2 * word + 1] = value & 0xff;
        const after = finishChecksum(sumBytes(bytes, 0, even));
        // Both 0x0000 and 0xffff are "zero" in one's complement; compare verification, not bits.
        const updated = updateChecksum(before, old, value);
        expect(finishChecksum(sumBytes(bytes, 0, even) + updated)).toBe(0);
        expect([after, after === 0 ? 0xffff : after, after === 0xffff ? 0 : after]).toContain(updated);
      }),
      { numRuns: 5000 },
    );
  });

  it("a UDP checksum that computes to 0 goes out as 0xffff", () => {
    expect(udpChecksumValue(0xffff)).toBe(0xffff);
    expect(udpChecksumValue(0x1234)).toBe(0xedcb);
  });
});
