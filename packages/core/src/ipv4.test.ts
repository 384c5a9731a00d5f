import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WireError } from "./errors.ts";
import { parseHex } from "./hex.ts";
import { emitIpv4, type Ipv4Header, ipv4HeaderLength, Ipv4View, parseIpv4 } from "./ipv4.ts";
import { ipv4Bytes, PARSER_RUNS, ROUNDTRIP_RUNS } from "./test_support.ts";

// 198.19.2.2:7000 → 198.18.1.2:40000 "hello"; tcpdump -vvv: no "bad cksum", "[udp sum ok]".
const HELLO_V4 = "45000021000000004011eba2c6130202c61201021b589c40000d753f68656c6c6f";

const headerArb = fc.record({
  dscp: fc.integer({ min: 0, max: 63 }),
  ecn: fc.integer({ min: 0, max: 3 }),
  identification: fc.integer({ min: 0, max: 0xffff }),
  dontFragment: fc.boolean(),
  moreFragments: fc.boolean(),
  fragmentOffset: fc.integer({ min: 0, max: 0x1fff }).map((n) => n * 8),
  ttl: fc.integer({ min: 0, max: 255 }),
  protocol: fc.integer({ min: 0, max: 255 }),
  src: ipv4Bytes,
  dst: ipv4Bytes,
  options: fc.integer({ min: 0, max: 10 }).chain((n) => fc.uint8Array({ minLength: 4 * n, maxLength: 4 * n })),
  payloadLength: fc.integer({ min: 0, max: 200 }),
});

describe("IPv4", () => {
  it("parses a known packet (checked with tcpdump)", () => {
    const p = parseIpv4(parseHex(HELLO_V4));
    expect(p.headerLength).toBe(20);
    expect(p.totalLength).toBe(33);
    expect(p.checksumValid).toBe(true);
    expect(p.header.ttl).toBe(64);
    expect(p.header.protocol).toBe(17);
    expect(Array.from(p.header.src)).toEqual([198, 19, 2, 2]);
    expect(p.payload.length).toBe(13);
  });

  it("emit → parse round-trips every header", () => {
    fc.assert(
      fc.property(headerArb, (h: Ipv4Header) => {
        const buf = new Uint8Array(ipv4HeaderLength(h) + h.payloadLength);
        const n = emitIpv4(h, buf, 0, "compute");
        const p = parseIpv4(buf);
        expect(n).toBe(ipv4HeaderLength(h));
        expect(p.header).toEqual(h);
        expect(p.checksumValid).toBe(true);
        expect(new Ipv4View(buf).ttl).toBe(h.ttl);
      }),
      { numRuns: ROUNDTRIP_RUNS },
    );
  });

  it("leaves the checksum zero when the kernel fills it", () => {
    const p = parseIpv4(parseHex(HELLO_V4));
    const buf = new Uint8Array(33);
    emitIpv4(p.header, buf, 0, "zero");
    expect(buf[10]).toBe(0);
    expect(buf[11]).toBe(0);
  });

  it.each([
    ["4500", "truncated", "truncated IPv4 header: 2 of 20 bytes"],
    ["44" + "00".repeat(19), "bad-header-length", "IPv4 IHL 4 is below the minimum 5"],
    ["46" + "00".repeat(19), "truncated", "truncated IPv4 header: 20 of 24 bytes (IHL 6)"],
    ["450000ff" + "00".repeat(16), "length-mismatch", "IPv4 total length 255 exceeds the 20 bytes given"],
    ["45000010" + "00".repeat(16), "length-mismatch", "IPv4 total length 16 is smaller than its header (20 bytes)"],
    ["65" + "00".repeat(19), "bad-version", "not an IPv4 header: version 6"],
  ])("rejects %s as %s: %s", (hex, kind, message) => {
    let error: unknown;
    try {
      parseIpv4(parseHex(hex));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WireError);
    expect({ kind: (error as WireError).kind, message: (error as WireError).message }).toEqual({ kind, message });
  });

  it("parses arbitrary bytes into a record or a WireError, never anything else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.boolean(), (bytes, fixVersion) => {
        if (fixVersion && bytes.length > 0) bytes[0] = 0x40 | (bytes[0]! & 0x0f);
        try {
          const p = parseIpv4(bytes);
          expect(p.headerLength + p.payload.length).toBe(p.totalLength);
          expect(p.totalLength).toBeLessThanOrEqual(bytes.length);
        } catch (e) {
          expect(e).toBeInstanceOf(WireError);
        }
      }),
      { numRuns: PARSER_RUNS },
    );
  });
});
