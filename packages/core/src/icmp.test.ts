import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WireError } from "./errors.ts";
import { parseHex } from "./hex.ts";
import { emitIcmp, icmpLength, type IcmpMessage, parseIcmp } from "./icmp.ts";
import { ipv6Bytes, PARSER_RUNS, ROUNDTRIP_RUNS } from "./test_support.ts";

const data = fc.uint8Array({ maxLength: 64 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const messageArb = (version: 4 | 6): fc.Arbitrary<IcmpMessage> =>
  fc.oneof(
    fc.record({ kind: fc.constantFrom("echo-request" as const, "echo-reply" as const), identifier: u16, sequence: u16, data }),
    fc.record({
      kind: fc.constant("destination-unreachable" as const),
      code: fc.integer({ min: 0, max: 15 }),
      nextHopMtu: version === 4 ? u16 : fc.constant(0),
      quoted: data,
    }),
    ...(version === 6 ? [fc.record({ kind: fc.constant("packet-too-big" as const), mtu: fc.integer({ min: 0, max: 0xffffffff }), quoted: data })] : []),
  );

describe("ICMP", () => {
  it("parses a known ICMPv4 echo request (ping -p, checked with tcpdump)", () => {
    // type 8, id 0x1234, seq 1, data "abcd"
    const bytes = parseHex("0800 2104 1234 0001 6162 6364");
    const p = parseIcmp(bytes, 4);
    expect(p.checksumValid).toBe(true);
    expect(p.message).toEqual({ kind: "echo-request", identifier: 0x1234, sequence: 1, data: parseHex("61626364") });
  });

  for (const version of [4, 6] as const) {
    it(`ICMPv${version} emit → parse round-trips with a verifying checksum`, () => {
      fc.assert(
        fc.property(messageArb(version), ipv6Bytes, ipv6Bytes, (m, src, dst) => {
          const buf = new Uint8Array(icmpLength(m));
          emitIcmp(m, version, buf, 0, src, dst);
          const p = parseIcmp(buf, version, src, dst);
          expect(p.checksumValid).toBe(true);
          expect(p.message).toEqual(m.kind === "destination-unreachable" ? { ...m, code: m.code } : m);
        }),
        { numRuns: ROUNDTRIP_RUNS },
      );
    });
  }

  it("parses arbitrary bytes into a record or a WireError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.constantFrom(4 as const, 6 as const), (bytes, v) => {
        try {
          expect(parseIcmp(bytes, v, new Uint8Array(16), new Uint8Array(16)).type).toBe(bytes[0]);
        } catch (e) {
          expect(e).toBeInstanceOf(WireError);
        }
      }),
      { numRuns: PARSER_RUNS },
    );
  });
});
