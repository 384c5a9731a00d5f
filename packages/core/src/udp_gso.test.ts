import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sameSocketAddress, type SocketAddress, socketAddress } from "./address.ts";
import { finishChecksum, sumBytes } from "./checksum.ts";
import { parseIpv4 } from "./ipv4.ts";
import { parseIpv6 } from "./ipv6.ts";
import { maxUdpPayload } from "./packet.ts";
import type { Datagram } from "./transport.ts";
import { parseUdp } from "./udp.ts";
import {
  gsoRunLength,
  parseVirtioNetHeader,
  UDP_GSO_MAX_SEGMENTS,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VIRTIO_NET_HDR_LENGTH,
  writeUdpGsoHeaders,
} from "./udp_gso.ts";
import { ipv4Bytes, ipv6Bytes, ROUNDTRIP_RUNS } from "./test_support.ts";

const A = socketAddress(new Uint8Array([198, 19, 2, 2]), 7000);
const B = socketAddress(new Uint8Array([198, 18, 1, 2]), 40000);
const C = socketAddress(new Uint8Array([198, 18, 1, 3]), 40000);

describe("gsoRunLength", () => {
  it("takes a run of one size between one pair, ending at most with one shorter datagram, never an empty one", () => {
    const pairs: [SocketAddress, SocketAddress][] = [[A, B], [A, C], [B, A]];
    const datagram = fc.record({ pair: fc.integer({ min: 0, max: 2 }), size: fc.constantFrom(0, 1, 600, 1199, 1200, 1400, 1500) })
      .map(({ pair, size }): Datagram => ({ src: pairs[pair]![0], dst: pairs[pair]![1], payload: new Uint8Array(size) }));
    fc.assert(
      fc.property(fc.array(datagram, { minLength: 1, maxLength: 80 }), fc.constantFrom(1200, 1472), (ds, maxSegment) => {
        const n = gsoRunLength(ds, 0, ds.length, maxSegment);
        const first = ds[0]!;
        const size = first.payload.length;
        expect(n).toBeGreaterThanOrEqual(1);
        if (size === 0 || size > maxSegment) {
          expect(n).toBe(1);
          return;
        }
        expect(n).toBeLessThanOrEqual(UDP_GSO_MAX_SEGMENTS);
        let total = 0;
        for (let k = 0; k < n; k++) {
          const d = ds[k]!;
          expect(sameSocketAddress(d.src, first.src) && sameSocketAddress(d.dst, first.dst)).toBe(true);
          expect(d.payload.length).toBeGreaterThan(0);
          if (k < n - 1) expect(d.payload.length).toBe(size);
          else expect(d.payload.length).toBeLessThanOrEqual(size);
          total += d.payload.length;
        }
        expect(total).toBeLessThanOrEqual(maxUdpPayload(4));
        // Maximal: the next datagram could not have joined.
        const next = ds[n];
        const last = ds[n - 1]!;
        if (next && n < UDP_GSO_MAX_SEGMENTS && last.payload.length === size) {
          const joins = next.payload.length > 0 && next.payload.length <= size && total + next.payload.length <= maxUdpPayload(4) &&
            sameSocketAddress(next.src, first.src) && sameSocketAddress(next.dst, first.dst);
          expect(joins).toBe(false);
        }
      }),
      { numRuns: ROUNDTRIP_RUNS },
    );
  });

  it("stops at the family's largest payload", () => {
    const ds = Array.from({ length: 64 }, (): Datagram => ({ src: A, dst: B, payload: new Uint8Array(1472) }));
    expect(gsoRunLength(ds, 0, ds.length, 1472)).toBe(Math.floor(65507 / 1472)); // 44
  });
});

describe("writeUdpGsoHeaders", () => {
  it("writes a virtio_net_hdr asking for GSO_UDP_L4 and IP/UDP headers for the whole, whose partial checksum completes to a valid one", () => {
    const family = fc.constantFrom(4 as const, 6 as const);
    fc.assert(
      fc.property(
        family,
        ipv4Bytes,
        ipv4Bytes,
        ipv6Bytes,
        ipv6Bytes,
        fc.integer({ min: 1, max: 1400 }),
        fc.integer({ min: 2, max: 40 }),
        fc.integer({ min: 1, max: 1400 }),
        (f, s4, d4, s6, d6, segment, count, tailWanted) => {
          const src = socketAddress(f === 4 ? s4 : s6, 7000);
          const dst = socketAddress(f === 4 ? d4 : d6, 40000);
          const tail = Math.min(tailWanted, segment);
          const payloadLength = segment * (count - 1) + tail;
          const header = new Uint8Array(VIRTIO_NET_HDR_LENGTH + 48);
          const h = writeUdpGsoHeaders(header, 0, src, dst, segment, payloadLength, { ttl: 64, tos: 0, identification: 0 });
          const ipLength = f === 4 ? 20 : 40;
          expect(h).toBe(VIRTIO_NET_HDR_LENGTH + ipLength + 8);
          expect(parseVirtioNetHeader(header)).toEqual({
            flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
            gsoType: VIRTIO_NET_HDR_GSO_UDP_L4,
            headerLength: ipLength + 8,
            gsoSize: segment,
            checksumStart: ipLength,
            checksumOffset: 6,
          });
          // The super-packet as the kernel sees it, payload in the pattern of a real one.
          const packet = new Uint8Array(h - VIRTIO_NET_HDR_LENGTH + payloadLength);
          packet.set(header.subarray(VIRTIO_NET_HDR_LENGTH, h));
          for (let i = 0; i < payloadLength; i++) packet[ipLength + 8 + i] = (i * 7 + 3) & 0xff;
          const ip = f === 4 ? parseIpv4(packet) : parseIpv6(packet);
          if (f === 4) expect(finishChecksum(sumBytes(packet, 0, 20))).toBe(0); // header checksum valid
          // CHECKSUM_PARTIAL completed as a device would: sum from csum_start to the end, stored.
          const c = finishChecksum(sumBytes(packet, ipLength, packet.length)) || 0xffff;
          packet[ipLength + 6] = c >>> 8;
          packet[ipLength + 7] = c & 0xff;
          const udp = parseUdp(ip.payload, src.ip, dst.ip);
          expect({ length: udp.header.length, valid: udp.checksumValid, ports: [udp.header.srcPort, udp.header.dstPort] }).toEqual({
            length: 8 + payloadLength,
            valid: true,
            ports: [7000, 40000],
          });
        },
      ),
      { numRuns: ROUNDTRIP_RUNS },
    );
  });

  it("refuses a whole over the family's maximum", () => {
    expect(() => writeUdpGsoHeaders(new Uint8Array(64), 0, A, B, 1400, 65508, { ttl: 64, tos: 0, identification: 0 })).toThrow(
      /exceeds the IPv4 maximum 65507/,
    );
  });
});
