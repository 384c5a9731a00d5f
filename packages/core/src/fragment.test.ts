import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseSocketAddress, socketAddress } from "./address.ts";
import { WireError } from "./errors.ts";
import { fragmentIpv4, fragmentIpv6, fragmentPacket } from "./fragment.ts";
import { parseIpv4 } from "./ipv4.ts";
import { parseIpv6 } from "./ipv6.ts";
import { ALL_CHECKSUMS, buildUdpPacket } from "./packet.ts";
import { createReassembler } from "./reassembly.ts";
import { parseUdp } from "./udp.ts";
import { ipv4Bytes, ipv6Bytes, ROUNDTRIP_RUNS, sameBytes } from "./test_support.ts";

const PATTERN = Uint8Array.from({ length: 65536 }, (_, i) => i % 256);
const pattern = (n: number) => PATTERN.subarray(0, n);

function udpPacket(src: string, dst: string, payload: Uint8Array, identification = 0): Uint8Array {
  const buf = new Uint8Array(48 + payload.length);
  const n = buildUdpPacket(buf, 0, parseSocketAddress(src), parseSocketAddress(dst), payload, { checksums: ALL_CHECKSUMS, identification });
  return buf.subarray(0, n);
}

describe("fragmentation", () => {
  it("splits a 3000-byte IPv4 datagram into 3 fragments at MTU 1500", () => {
    const frags = fragmentIpv4(udpPacket("198.19.2.2:7000", "198.18.1.2:40000", pattern(3000), 77), 1500);
    expect(frags.map((f) => f.length)).toEqual([1500, 1500, 68]);
    const parsed = frags.map((f) => parseIpv4(f));
    expect(parsed.map((p) => p.header.fragmentOffset)).toEqual([0, 1480, 2960]);
    expect(parsed.map((p) => p.header.moreFragments)).toEqual([true, true, false]);
    expect(parsed.every((p) => p.checksumValid && p.header.identification === 77)).toBe(true);
  });

  it("splits a 3000-byte IPv6 datagram into Fragment-header fragments at MTU 1500", () => {
    const frags = fragmentIpv6(udpPacket("[2001:db8:2::2]:7000", "[2001:db8:1::2]:40000", pattern(3000)), 1500, 0xabcdef);
    expect(frags.map((f) => f.length)).toEqual([1496, 1496, 160]);
    const parsed = frags.map((f) => parseIpv6(f));
    expect(parsed.map((p) => p.fragment?.fragmentOffset)).toEqual([0, 1448, 2896]);
    expect(parsed.every((p) => p.fragment?.identification === 0xabcdef && p.fragment.nextHeader === 17)).toBe(true);
  });

  it("refuses to fragment a DF packet and MTUs with no room", () => {
    const buf = new Uint8Array(2000);
    const n = buildUdpPacket(buf, 0, parseSocketAddress("198.19.2.2:1"), parseSocketAddress("198.18.1.2:2"), pattern(1600), {
      checksums: ALL_CHECKSUMS,
      dontFragment: true,
    });
    expect(() => fragmentIpv4(buf.subarray(0, n), 1500)).toThrow("has Don't Fragment set");
    expect(() => fragmentIpv4(udpPacket("198.19.2.2:1", "198.18.1.2:2", pattern(100)), 40)).toThrow(WireError);
    expect(fragmentPacket(udpPacket("198.19.2.2:1", "198.18.1.2:2", pattern(10)), 1500, 0)).toHaveLength(1);
  });

  it("fragment → reassemble round-trips in any arrival order, IPv4 and IPv6", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.tuple(ipv4Bytes, ipv4Bytes), fc.tuple(ipv6Bytes, ipv6Bytes)),
        fc.integer({ min: 0, max: 9000 }),
        fc.integer({ min: 1280, max: 1500 }),
        fc.integer({ min: 1, max: 0xffff }),
        fc.infiniteStream(fc.nat()),
        ([s, d], size, mtu, id, randoms) => {
          const src = socketAddress(s, 7000), dst = socketAddress(d, 40000);
          const payload = pattern(size);
          const buf = new Uint8Array(48 + size);
          const n = buildUdpPacket(buf, 0, src, dst, payload, { checksums: ALL_CHECKSUMS, identification: id });
          const frags = fragmentPacket(buf.subarray(0, n), mtu, id);
          expect(frags.every((f) => f.length <= mtu)).toBe(true);
          // Shuffle with the stream of randoms (Fisher–Yates).
          const it = randoms[Symbol.iterator]();
          for (let i = frags.length - 1; i > 0; i--) {
            const j = it.next().value! % (i + 1);
            [frags[i], frags[j]] = [frags[j]!, frags[i]!];
          }
          const r = createReassembler();
          const results = frags.map((f) => r.push(f, 0)).filter((x) => x !== undefined);
          expect(results).toHaveLength(1);
          expect(sameBytes(results[0]!, buf.subarray(0, n))).toBe(true);
          expect(r.pendingBytes).toBe(0);
          const ip = src.family === 4 ? parseIpv4(results[0]!) : parseIpv6(results[0]!);
          expect(parseUdp(ip.payload, src.ip, dst.ip).checksumValid).toBe(true);
        },
      ),
      { numRuns: Math.min(ROUNDTRIP_RUNS, 2000) },
    );
  });
});

describe("reassembly", () => {
  const v6frags = () => fragmentIpv6(udpPacket("[2001:db8:2::2]:7000", "[2001:db8:1::2]:40000", pattern(3000)), 1280, 5);

  it("drops an IPv6 datagram with overlapping fragments, and its later fragments (RFC 5722)", () => {
    const frags = v6frags();
    const r = createReassembler();
    expect(r.push(frags[0]!, 0)).toBeUndefined();
    // A forged fragment overlapping the first one's data.
    const evil = frags[1]!.slice();
    evil[42] = 0;
    evil[43] = 8; // offset 8, more fragments
    expect(r.push(evil, 0)).toBeUndefined();
    expect(r.stats.overlapping).toBe(1);
    for (const f of frags.slice(1)) expect(r.push(f, 1)).toBeUndefined();
    expect(r.stats.reassembled).toBe(0);
    expect(r.pendingBytes).toBe(0);
  });

  it("ignores exact duplicates", () => {
    const frags = v6frags();
    const r = createReassembler();
    r.push(frags[0]!, 0);
    r.push(frags[0]!, 0);
    expect(r.stats.duplicates).toBe(1);
    const done = frags.slice(1).map((f) => r.push(f, 0)).filter(Boolean);
    expect(done).toHaveLength(1);
  });

  it("times out incomplete datagrams", () => {
    const frags = v6frags();
    const r = createReassembler({ timeoutMs: 1000 });
    r.push(frags[0]!, 0);
    expect(r.pendingDatagrams).toBe(1);
    r.expire(999);
    expect(r.pendingDatagrams).toBe(1);
    r.expire(1000);
    expect(r.pendingDatagrams).toBe(0);
    expect(r.stats.timedOut).toBe(1);
    expect(r.pendingBytes).toBe(0);
  });

  it("bounds memory by evicting the oldest datagram", () => {
    const r = createReassembler({ maxBytes: 4000 });
    for (let id = 1; id <= 10; id++) {
      const frags = fragmentIpv4(udpPacket("198.19.2.2:7000", "198.18.1.2:40000", pattern(3000), id), 1500);
      r.push(frags[0]!, id);
      expect(r.pendingBytes).toBeLessThanOrEqual(4000);
    }
    expect(r.stats.evicted).toBeGreaterThan(0);
    expect(r.pendingDatagrams).toBe(2);
  });

  it("rejects a datagram that would exceed 65535 bytes (ping of death)", () => {
    const frags = fragmentIpv4(udpPacket("198.19.2.2:7000", "198.18.1.2:40000", pattern(3000), 9), 1500);
    const last = frags[2]!.slice();
    last[6] = 0x1f;
    last[7] = 0xff; // offset 65528
    const r = createReassembler();
    expect(r.push(last, 0)).toBeUndefined();
    expect(r.stats.invalid).toBe(1);
    expect(r.pendingBytes).toBe(0);
  });

  it("passes whole packets through untouched", () => {
    const p = udpPacket("198.19.2.2:7000", "198.18.1.2:40000", pattern(10));
    expect(createReassembler().push(p, 0)).toEqual(p);
  });
});
