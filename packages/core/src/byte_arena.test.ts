import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { arenaCopy, createByteArena } from "./byte_arena.ts";

describe("byte arena", () => {
  it("keeps every copy as it was, whatever was copied after it and whatever became of the source", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 0, maxLength: 40 }), { maxLength: 200 }), fc.integer({ min: 1, max: 64 }), (runs, chunkSize) => {
        const arena = createByteArena(chunkSize);
        const source = new Uint8Array(64);
        const kept = runs.map((bytes) => {
          source.set(bytes, 3);
          const copy = arenaCopy(arena, source, 3, 3 + bytes.length);
          source.fill(0xee); // the caller reuses its buffer (a receive ring) at once
          return copy;
        });
        runs.forEach((bytes, k) => expect([...kept[k]!]).toEqual([...bytes]));
      }),
    );
  });

  it("shares one chunk between small copies, and gives a run longer than a chunk its own buffer", () => {
    const arena = createByteArena(16);
    const src = new Uint8Array(32).map((_, i) => i);
    const a = arenaCopy(arena, src, 0, 4);
    const b = arenaCopy(arena, src, 4, 8);
    expect(a.buffer).toBe(b.buffer);
    expect([a.byteOffset, b.byteOffset]).toEqual([0, 4]);
    const c = arenaCopy(arena, src, 0, 12); // does not fit what is left: a fresh chunk
    expect(c.buffer).not.toBe(a.buffer);
    const long = arenaCopy(arena, src, 0, 20);
    expect(long.buffer.byteLength).toBe(20);
    expect([...long]).toEqual([...src.subarray(0, 20)]);
  });
});
