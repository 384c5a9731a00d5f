import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WireError } from "./errors.ts";
import { emitUdp, parseUdp } from "./udp.ts";
import { ipv4Bytes, ipv6Bytes, PARSER_RUNS, port, ROUNDTRIP_RUNS } from "./test_support.ts";

describe("UDP", () => {
  it("emit → parse round-trips with a verifying checksum over IPv4 and IPv6", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.tuple(ipv4Bytes, ipv4Bytes), fc.tuple(ipv6Bytes, ipv6Bytes)),
        port,
        port,
        fc.uint8Array({ maxLength: 300 }),
        ([src, dst], sp, dp, payload) => {
          const buf = new Uint8Array(8 + payload.length);
          buf.set(payload, 8);
          emitUdp({ srcPort: sp, dstPort: dp }, buf, 0, payload.length, src, dst);
          const p = parseUdp(buf, src, dst);
          expect(p.header.srcPort).toBe(sp);
          expect(p.header.dstPort).toBe(dp);
          expect(p.header.checksum).not.toBe(0);
          expect(p.checksumValid).toBe(true);
          expect(p.payload).toEqual(payload);
        },
      ),
      { numRuns: ROUNDTRIP_RUNS },
    );
  });

  it("a zero checksum on IPv4 means 'not computed'", () => {
    const buf = new Uint8Array(9);
    emitUdp({ srcPort: 1, dstPort: 2 }, buf, 0, 1);
    expect(parseUdp(buf, new Uint8Array(4), new Uint8Array(4)).checksumValid).toBe(null);
  });

  it("rejects a length field that disagrees with the bytes", () => {
    expect(() => parseUdp(new Uint8Array([0, 1, 0, 2, 0, 20, 0, 0, 1, 2]))).toThrow("UDP length 20 disagrees with the 10 bytes of IP payload");
    expect(() => parseUdp(new Uint8Array(5))).toThrow("truncated UDP header: 5 of 8 bytes");
  });

  it("parses arbitrary bytes into a record or a WireError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.boolean(), (bytes, fix) => {
        if (fix && bytes.length >= 6) {
          bytes[4] = 0;
          bytes[5] = bytes.length;
        }
        try {
          const p = parseUdp(bytes, new Uint8Array(4), new Uint8Array(4));
          expect(p.payload.length + 8).toBe(bytes.length);
        } catch (e) {
          expect(e).toBeInstanceOf(WireError);
        }
      }),
      { numRuns: PARSER_RUNS },
    );
  });
});
