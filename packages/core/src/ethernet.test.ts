import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WireError } from "./errors.ts";
import { emitEthernet, EtherType, formatMac, parseEthernet } from "./ethernet.ts";
import { PARSER_RUNS, ROUNDTRIP_RUNS } from "./test_support.ts";

const mac = fc.uint8Array({ minLength: 6, maxLength: 6 });

describe("Ethernet II", () => {
  it("emit → parse round-trips", () => {
    fc.assert(
      fc.property(mac, mac, fc.integer({ min: 0x0600, max: 0xffff }), fc.uint8Array({ maxLength: 64 }), (dst, src, etherType, payload) => {
        const buf = new Uint8Array(14 + payload.length);
        emitEthernet({ dst, src, etherType }, buf, 0);
        buf.set(payload, 14);
        const p = parseEthernet(buf);
        expect(p.header).toEqual({ dst, src, etherType });
        expect(p.payload).toEqual(payload);
      }),
      { numRuns: ROUNDTRIP_RUNS },
    );
  });

  it("formats MACs and names EtherTypes", () => {
    expect(formatMac(new Uint8Array([2, 0, 0, 0, 0, 0xab]))).toBe("02:00:00:00:00:ab");
    expect(EtherType.Ipv6).toBe(0x86dd);
  });

  it("parses arbitrary bytes into a record or a WireError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 30 }), (bytes) => {
        try {
          expect(parseEthernet(bytes).header.etherType).toBeGreaterThanOrEqual(0x600);
        } catch (e) {
          expect(e).toBeInstanceOf(WireError);
        }
      }),
      { numRuns: PARSER_RUNS },
    );
  });
});
