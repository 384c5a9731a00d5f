import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WireError } from "./errors.ts";
import { parseHex } from "./hex.ts";
import { emitIpv6, emitIpv6FragmentHeader, type Ipv6FragmentHeader, type Ipv6Header, NextHeader, parseIpv6, parseIpv6FragmentHeader } from "./ipv6.ts";
import { ipv6Bytes, PARSER_RUNS, ROUNDTRIP_RUNS } from "./test_support.ts";

// [2001:db8:2::2]:7000 → [2001:db8:1::2]:40000 "hello"; tcpdump -vvv: "[udp sum ok]".
const HELLO_V6 = "60000000000d114020010db800020000000000000000000220010db80001000000000000000000021b589c40000da8f068656c6c6f";

describe("IPv6", () => {
  it("parses a known packet (checked with tcpdump)", () => {
    const p = parseIpv6(parseHex(HELLO_V6));
    expect(p.header.payloadLength).toBe(13);
    expect(p.header.hopLimit).toBe(64);
    expect(p.upperProtocol).toBe(17);
    expect(p.upperOffset).toBe(40);
    expect(p.extensions).toEqual([]);
  });

  it("emit → parse round-trips the fixed header", () => {
    fc.assert(
      fc.property(
        fc.record({
          trafficClass: fc.integer({ min: 0, max: 255 }),
          flowLabel: fc.integer({ min: 0, max: 0xfffff }),
          payloadLength: fc.integer({ min: 0, max: 64 }),
          nextHeader: fc.constantFrom(6, 17, 58, 59),
          hopLimit: fc.integer({ min: 0, max: 255 }),
          src: ipv6Bytes,
          dst: ipv6Bytes,
        }),
        (h: Ipv6Header) => {
          const buf = new Uint8Array(40 + h.payloadLength);
          expect(emitIpv6(h, buf, 0)).toBe(40);
          expect(parseIpv6(buf).header).toEqual(h);
        },
      ),
      { numRuns: ROUNDTRIP_RUNS },
    );
  });

  it("emit → parse round-trips the Fragment header", () => {
    fc.assert(
      fc.property(
        fc.record({
          nextHeader: fc.integer({ min: 0, max: 255 }),
          fragmentOffset: fc.integer({ min: 0, max: 0x1fff }).map((n) => n * 8),
          moreFragments: fc.boolean(),
          identification: fc.integer({ min: 0, max: 0xffffffff }),
        }),
        (f: Ipv6FragmentHeader) => {
          const buf = new Uint8Array(8);
          emitIpv6FragmentHeader(f, buf, 0);
          expect(parseIpv6FragmentHeader(buf, 0)).toEqual(f);
        },
      ),
      { numRuns: ROUNDTRIP_RUNS },
    );
  });

  it("walks Hop-by-Hop, Destination Options and Fragment headers to UDP", () => {
    const buf = new Uint8Array(40 + 8 + 16 + 8 + 8);
    emitIpv6(
      { trafficClass: 0, flowLabel: 0, payloadLength: 40, nextHeader: NextHeader.HopByHop, hopLimit: 1, src: new Uint8Array(16), dst: new Uint8Array(16) },
      buf,
      0,
    );
    buf[40] = NextHeader.DestinationOptions;
    buf[41] = 0; // HBH, 8 bytes (PadN fill)
    buf[42] = 1;
    buf[43] = 4;
    buf[48] = NextHeader.Fragment;
    buf[49] = 1; // Dest opts, 16 bytes
    buf[50] = 1;
    buf[51] = 12;
    emitIpv6FragmentHeader({ nextHeader: 17, fragmentOffset: 0, moreFragments: false, identification: 9 }, buf, 64);
    buf.set([0, 1, 0, 2, 0, 8, 0, 0], 72);
    const p = parseIpv6(buf);
    expect(p.extensions.map((e) => [e.type, e.offset, e.length])).toEqual([[0, 40, 8], [60, 48, 16], [44, 64, 8]]);
    expect(p.fragment?.identification).toBe(9);
    expect(p.upperProtocol).toBe(17);
    expect(p.upperOffset).toBe(72);
  });

  it.each([
    ["6000", "truncated IPv6 header: 2 of 40 bytes"],
    ["60000000000811" + "00".repeat(33), "IPv6 payload length 8 exceeds the 0 bytes after the header"],
    ["60000000000863" + "00".repeat(41), "unknown IPv6 next header 99 at offset 40"],
    ["60000000000800" + "00".repeat(33) + "1103000000000000", "truncated IPv6 extension header 0: 8 of 32 bytes"],
  ])("rejects %s: %s", (hex, message) => {
    expect(() => parseIpv6(parseHex(hex))).toThrow(message);
  });

  it("parses arbitrary bytes into a record or a WireError, never anything else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 120 }), fc.boolean(), (bytes, plausible) => {
        if (plausible && bytes.length >= 40) {
          bytes[0] = 0x60;
          bytes[4] = 0;
          bytes[5] = bytes.length - 40;
          bytes[6] = [0, 43, 44, 60, 51, 17, 58][bytes[6]! % 7]!;
        }
        try {
          const p = parseIpv6(bytes);
          expect(p.upperOffset).toBeLessThanOrEqual(p.totalLength);
          expect(p.totalLength).toBeLessThanOrEqual(bytes.length);
        } catch (e) {
          expect(e).toBeInstanceOf(WireError);
        }
      }),
      { numRuns: PARSER_RUNS },
    );
  });
});
