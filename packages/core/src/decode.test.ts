import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodePacket } from "./decode.ts";
import { WireError } from "./errors.ts";
import { parseHex } from "./hex.ts";
import { PARSER_RUNS } from "./test_support.ts";

describe("decodePacket", () => {
  it("describes every layer of an IPv4/UDP packet", () => {
    const d = decodePacket(parseHex("45000021000000004011eba2c6130202c61201021b589c40000d753f68656c6c6f"));
    expect(d).toMatchObject({
      ipv4: { src: "198.19.2.2", dst: "198.18.1.2", ttl: 64, checksumValid: true, totalLength: 33 },
      udp: { srcPort: 7000, dstPort: 40000, length: 13, checksumValid: true, payload: "68656c6c6f" },
    });
  });

  it("decodes an Ethernet frame with padding", () => {
    const ip = "45000021000000004011eba2c6130202c61201021b589c40000d753f68656c6c6f";
    const d = decodePacket(parseHex("020000000001020000000002" + "0800" + ip + "0000000000000000000000000000"), { ethernet: true });
    expect(d).toMatchObject({ ethernet: { etherType: "0x0800" }, udp: { checksumValid: true } });
  });

  it.each([
    ["4500", "truncated IPv4 header: 2 of 20 bytes"],
    ["45000021000000004011eba2c6130202c61201021b589c40000d753f68656c6c6f00", "IPv4 total length 33 disagrees with the 34 bytes given"],
    ["45000021000000004011eba2c6130202c61201021b589c40000e753f68656c6c6f", "UDP length 14 disagrees with the 13 bytes of IP payload"],
    ["", "empty packet"],
    ["7500", "not an IP packet: version 7"],
    ["abc", "odd-length hex: 3 digits"],
  ])("rejects %s: %s", (hex, message) => {
    let error: unknown;
    try {
      decodePacket(parseHex(hex));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WireError);
    expect((error as WireError).message).toBe(message);
  });
});

describe("decodePacket on arbitrary bytes", () => {
  it("returns a description or throws a WireError, never anything else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 90 }), fc.constantFrom(0x45, 0x46, 0x60, -1), fc.boolean(), (bytes, first, fixLength) => {
        if (first >= 0 && bytes.length > 0) bytes[0] = first;
        if (fixLength && bytes.length >= 6) {
          if (first === 0x60) {
            bytes[4] = 0;
            bytes[5] = Math.max(0, bytes.length - 40);
          } else {
            bytes[2] = 0;
            bytes[3] = bytes.length;
          }
        }
        let d: Record<string, unknown>;
        try {
          d = decodePacket(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(WireError);
          return;
        }
        // A description of the IP version the first nibble names, and plain JSON all the way down.
        expect(Object.keys(d)[0]).toBe(bytes[0]! >> 4 === 4 ? "ipv4" : "ipv6");
        expect(JSON.parse(JSON.stringify(d))).toEqual(d);
      }),
      { numRuns: PARSER_RUNS },
    );
  });
});
