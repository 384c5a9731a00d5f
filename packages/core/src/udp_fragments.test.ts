import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { socketAddress } from "./address.ts";
import { fragmentPacket } from "./fragment.ts";
import { ALL_CHECKSUMS, buildUdpPacket, RAW_SOCKET_CHECKSUMS, udpChecksumFor } from "./packet.ts";
import { createReassembler } from "./reassembly.ts";
import { UDP_FRAGMENT_HEADER_MAX, udpFragmentCount, writeUdpFragment } from "./udp_fragments.ts";
import { ipv4Bytes, ipv6Bytes, ROUNDTRIP_RUNS } from "./test_support.ts";

/** Whole-packet comparisons of up to 9000 bytes are slow: fewer cases than the round trips. */
const FRAGMENT_RUNS = Math.min(ROUNDTRIP_RUNS, 1000);

function patterned(size: number, step: number): Uint8Array {
  const p = new Uint8Array(size);
  for (let i = 0; i < size; i++) p[i] = (i * step + size) & 0xff;
  return p;
}

/** Each fragment as one byte string: its header from writeUdpFragment, then its payload slice. */
function zeroCopyFragments(
  family: 4 | 6,
  src: Uint8Array,
  dst: Uint8Array,
  payload: Uint8Array,
  mtu: number,
  id: number,
  checksums = RAW_SOCKET_CHECKSUMS,
): Uint8Array[] {
  const s = socketAddress(src, 40000);
  const d = socketAddress(dst, 7000);
  const sum = udpChecksumFor(s, d, payload);
  const slice = new Int32Array(2);
  const out: Uint8Array[] = [];
  for (let k = 0, n = udpFragmentCount(family, payload.length, mtu); k < n; k++) {
    const header = new Uint8Array(UDP_FRAGMENT_HEADER_MAX);
    const h = writeUdpFragment(header, 0, { src: s, dst: d, payload }, { checksums, ttl: 61, tos: 0xb8, identification: id }, {
      mtu,
      index: k,
      udpChecksum: sum,
    }, slice);
    const f = new Uint8Array(h + slice[1]! - slice[0]!);
    f.set(header.subarray(0, h));
    f.set(payload.subarray(slice[0], slice[1]), h);
    out.push(f);
  }
  return out;
}

function copiedFragments(src: Uint8Array, dst: Uint8Array, payload: Uint8Array, mtu: number, id: number, checksums = RAW_SOCKET_CHECKSUMS): Uint8Array[] {
  const s = socketAddress(src, 40000);
  const d = socketAddress(dst, 7000);
  const packet = new Uint8Array(48 + payload.length);
  const n = buildUdpPacket(packet, 0, s, d, payload, { checksums, ttl: 61, tos: 0xb8, identification: id });
  return fragmentPacket(packet.subarray(0, n), mtu, id, checksums.ipv4Header);
}

describe("UDP fragments without a copy", () => {
  it("IPv4: the same bytes as fragmenting the whole packet, every checksum policy", () => {
    fc.assert(
      fc.property(
        ipv4Bytes,
        ipv4Bytes,
        fc.integer({ min: 0, max: 9000 }),
        fc.integer({ min: 68, max: 9000 }),
        fc.integer({ min: 1, max: 0xffff }),
        fc.boolean(),
        (src, dst, size, mtu, id, compute) => {
          const payload = patterned(size, 7);
          const checksums = compute ? ALL_CHECKSUMS : RAW_SOCKET_CHECKSUMS;
          const count = udpFragmentCount(4, size, mtu);
          expect(count === 1).toBe(28 + size <= mtu);
          if (count === 1) return;
          expect(zeroCopyFragments(4, src, dst, payload, mtu, id, checksums)).toEqual(copiedFragments(src, dst, payload, mtu, id, checksums));
        },
      ),
      { numRuns: FRAGMENT_RUNS },
    );
  });

  it("IPv6: the same bytes as fragmenting the whole packet (Fragment header, 32-bit ID)", () => {
    fc.assert(
      fc.property(
        ipv6Bytes,
        ipv6Bytes,
        fc.integer({ min: 0, max: 9000 }),
        fc.integer({ min: 1280, max: 9000 }),
        fc.integer({ min: 1, max: 0x7fffffff }),
        (src, dst, size, mtu, id) => {
          const payload = patterned(size, 13);
          const count = udpFragmentCount(6, size, mtu);
          expect(count === 1).toBe(48 + size <= mtu);
          if (count === 1) return;
          expect(zeroCopyFragments(6, src, dst, payload, mtu, id)).toEqual(copiedFragments(src, dst, payload, mtu, id));
        },
      ),
      { numRuns: FRAGMENT_RUNS },
    );
  });

  it("a 3000-byte datagram leaves as 3 IPv4 fragments that reassemble to it", () => {
    const src = Uint8Array.of(198, 19, 2, 2);
    const dst = Uint8Array.of(198, 18, 1, 2);
    const payload = Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff);
    const frags = zeroCopyFragments(4, src, dst, payload, 1500, 77, ALL_CHECKSUMS);
    expect(frags.map((f) => f.length)).toEqual([1500, 1500, 68]); // 3008 datagram bytes: 1480 + 1480 + 48
    const r = createReassembler();
    let whole: Uint8Array | undefined;
    for (const f of frags) whole = r.push(f, 0) ?? whole;
    expect(whole).toBeDefined();
    expect(whole!.subarray(28)).toEqual(payload);
  });
});
