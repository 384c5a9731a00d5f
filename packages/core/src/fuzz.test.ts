/**
 * Mutation fuzzing of every parser: valid packets (IPv4/IPv6 + UDP, their fragments, ICMP errors
 * quoting them, Ethernet frames around them) are mutated — bytes and bits flipped, length fields set
 * to boundary values, truncated, extended, spliced — and fed to each parser. The only acceptable
 * failure is the typed error; any other exception, or one case taking longer than HANG_MS, fails.
 * Random inputs of the arbitrary-bytes kind live beside each parser's own suite.
 *
 * `npm run fuzz` runs the same suite with FC_RUNS=1000000.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseCidr, parseIp, parseSocketAddress } from "./address.ts";
import { decodePacket } from "./decode.ts";
import { AddressError, WireError } from "./errors.ts";
import { parseEthernet } from "./ethernet.ts";
import { fragmentPacket } from "./fragment.ts";
import { parseHex } from "./hex.ts";
import { emitIcmp, icmpLength, parseIcmp } from "./icmp.ts";
import { parseIpv4 } from "./ipv4.ts";
import { parseIpv6 } from "./ipv6.ts";
import { ALL_CHECKSUMS, buildUdpPacket, udpHeadersLength } from "./packet.ts";
import { createReassembler } from "./reassembly.ts";
import { parseUdp } from "./udp.ts";
import { ipv4Bytes, ipv6Bytes, PARSER_RUNS } from "./test_support.ts";

/** One edit of a packet. */
type Mutation =
  | { op: "set"; at: number; value: number }
  | { op: "flip"; at: number; bit: number }
  | { op: "u16"; at: number; value: number }
  | { op: "truncate"; at: number }
  | { op: "append"; bytes: Uint8Array }
  | { op: "splice"; at: number; bytes: Uint8Array };

const position = fc.nat({ max: 0xffff });
const u16Boundary = fc.constantFrom(0, 1, 7, 8, 19, 20, 39, 40, 47, 48, 0x7fff, 0xfffe, 0xffff);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("set" as const), at: position, value: fc.nat({ max: 255 }) }),
  fc.record({ op: fc.constant("flip" as const), at: position, bit: fc.nat({ max: 7 }) }),
  fc.record({ op: fc.constant("u16" as const), at: position, value: fc.oneof(u16Boundary, fc.nat({ max: 0xffff })) }),
  fc.record({ op: fc.constant("truncate" as const), at: position }),
  fc.record({ op: fc.constant("append" as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ op: fc.constant("splice" as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
);

/** Apply edits to a copy; positions wrap around the current length. */
function mutate(packet: Uint8Array, edits: readonly Mutation[]): Uint8Array {
  let b = packet.slice();
  for (const m of edits) {
    const at = b.length === 0 ? 0 : m.op === "append" ? 0 : m.at % b.length;
    switch (m.op) {
      case "set":
        if (b.length) b[at] = m.value;
        break;
      case "flip":
        if (b.length) b[at] = b[at]! ^ (1 << m.bit);
        break;
      case "u16":
        if (b.length >= 2) {
          const i = Math.min(at, b.length - 2);
          b[i] = m.value >> 8;
          b[i + 1] = m.value & 0xff;
        }
        break;
      case "truncate":
        b = b.subarray(0, at);
        break;
      case "append": {
        const c = new Uint8Array(b.length + m.bytes.length);
        c.set(b);
        c.set(m.bytes, b.length);
        b = c;
        break;
      }
      case "splice": {
        const c = b.slice();
        c.set(m.bytes.subarray(0, Math.max(0, c.length - at)), at);
        b = c;
        break;
      }
    }
  }
  return b;
}

/** Valid packets to start from: IPv4/IPv6 UDP, possibly fragmented, possibly quoted by ICMP or framed. */
const seedPacket: fc.Arbitrary<{ family: 4 | 6; packets: Uint8Array[] }> = fc
  .record({
    family: fc.constantFrom(4 as const, 6 as const),
    src4: ipv4Bytes,
    dst4: ipv4Bytes,
    src6: ipv6Bytes,
    dst6: ipv6Bytes,
    sport: fc.integer({ min: 1, max: 65535 }),
    dport: fc.integer({ min: 1, max: 65535 }),
    payload: fc.uint8Array({ maxLength: 1600 }),
    mtu: fc.option(fc.integer({ min: 1280, max: 1500 }), { nil: undefined }),
    wrap: fc.constantFrom("none", "icmp", "ethernet"),
  })
  .map((r) => {
    const family = r.family;
    const src = { family, ip: family === 4 ? r.src4 : r.src6, port: r.sport };
    const dst = { family, ip: family === 4 ? r.dst4 : r.dst6, port: r.dport };
    const buf = new Uint8Array(udpHeadersLength(family) + r.payload.length);
    const n = buildUdpPacket(buf, 0, src, dst, r.payload, { checksums: ALL_CHECKSUMS, identification: 7 });
    let packets = r.mtu !== undefined ? fragmentPacket(buf.subarray(0, n), r.mtu, 7) : [buf.subarray(0, n)];
    if (r.wrap === "icmp") {
      const quoted = packets[0]!.subarray(0, Math.min(packets[0]!.length, 548));
      const m = { kind: "destination-unreachable" as const, code: 3, nextHopMtu: 0, quoted };
      const out = new Uint8Array(icmpLength(m));
      emitIcmp(m, family, out, 0, dst.ip, src.ip);
      packets = [out];
    } else if (r.wrap === "ethernet") {
      packets = packets.map((p) => {
        const f = new Uint8Array(14 + p.length);
        f.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, family === 4 ? 0x08 : 0x86, family === 4 ? 0x00 : 0xdd]);
        f.set(p, 14);
        return f;
      });
    }
    return { family, packets };
  });

/** Run `f`; it may return or throw one of `allowed`, nothing else (a hang shows as the test's timeout). */
function onlyTyped(f: () => unknown, allowed: readonly (abstract new (...a: never[]) => Error)[]): "parsed" | "rejected" {
  let outcome: "parsed" | "rejected" = "parsed";
  try {
    f();
  } catch (e) {
    if (!allowed.some((t) => e instanceof t)) throw e;
    outcome = "rejected";
  }
  return outcome;
}

const hexOf = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

describe(`mutation fuzzing, ${PARSER_RUNS} cases per parser`, () => {
  const mutated = seedPacket.chain((seed) =>
    fc.record({ seed: fc.constant(seed), which: fc.nat({ max: seed.packets.length - 1 }), edits: fc.array(mutation, { minLength: 1, maxLength: 6 }) })
  );

  const parsers: [string, (b: Uint8Array, family: 4 | 6) => unknown][] = [
    ["parseIpv4", (b) => parseIpv4(b)],
    ["parseIpv6", (b) => parseIpv6(b)],
    ["parseUdp", (b, family) => parseUdp(b.subarray(family === 4 ? 20 : 40))],
    ["parseIcmp", (b, family) => parseIcmp(b, family)],
    ["parseEthernet", (b) => parseEthernet(b)],
    ["decodePacket", (b) => decodePacket(b)],
    ["decodePacket --ethernet", (b) => decodePacket(b, { ethernet: true })],
  ];
  for (const [name, parse] of parsers) {
    it(`${name}: mutated packets give a result or a WireError`, () => {
      const seen = { parsed: 0, rejected: 0 };
      fc.assert(
        fc.property(mutated, ({ seed, which, edits }) => {
          seen[onlyTyped(() => parse(mutate(seed.packets[which]!, edits), seed.family), [WireError])]++;
        }),
        { numRuns: PARSER_RUNS },
      );
      // Mutations that only ever fail (or never do) would not exercise the parser's decisions.
      if (PARSER_RUNS >= 1000) expect(Math.min(seen.parsed, seen.rejected)).toBeGreaterThan(PARSER_RUNS / 100);
    });
  }

  it("reassembly: mutated fragment trains give packets, undefined or a WireError, within its memory bound", () => {
    const maxBytes = 64 << 10;
    const r = createReassembler({ maxBytes, maxDatagrams: 64, timeoutMs: 1000 });
    let now = 0;
    fc.assert(
      fc.property(mutated, fc.array(fc.nat(), { maxLength: 8 }), ({ seed, edits }, order) => {
        const train = seed.packets.map((p, i) => (i === order.length % seed.packets.length ? mutate(p, edits) : p));
        for (const k of order) train.push(train[k % train.length]!); // duplicates and reordering
        for (const p of train) {
          onlyTyped(() => r.push(p, now), [WireError]);
          // The bound holds after every push, whatever arrived.
          expect(r.pendingBytes).toBeLessThanOrEqual(maxBytes);
        }
        now += 10;
      }),
      { numRuns: Math.max(1, Math.floor(PARSER_RUNS / 4)) },
    );
  });

  it("parseHex: any text gives bytes or a WireError", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 64 }), seedPacket.map((s) => hexOf(s.packets[0]!))), fc.array(mutation, { maxLength: 3 }), (text, edits) => {
        const mangled = new TextDecoder().decode(mutate(new TextEncoder().encode(text), edits));
        onlyTyped(() => parseHex(mangled), [WireError]);
      }),
      { numRuns: PARSER_RUNS },
    );
  });

  it("address parsers: mutated addresses give a record or an AddressError", () => {
    const valid = fc.oneof(
      fc.constantFrom("198.18.0.1:53", "[2001:db8::1]:443", "198.18.0.0/15", "2001:db8::/32", "::ffff:198.18.0.1", "[fe80::1%eth0]:5", "0.0.0.0:0"),
      fc.string({ maxLength: 48 }),
    );
    fc.assert(
      fc.property(valid, fc.array(mutation, { maxLength: 4 }), (text, edits) => {
        const mangled = new TextDecoder().decode(mutate(new TextEncoder().encode(text), edits));
        onlyTyped(() => parseSocketAddress(mangled), [AddressError]);
        onlyTyped(() => parseIp(mangled), [AddressError]);
        onlyTyped(() => parseCidr(mangled), [AddressError]);
      }),
      { numRuns: PARSER_RUNS },
    );
  });
});
