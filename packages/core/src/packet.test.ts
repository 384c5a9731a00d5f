import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseSocketAddress, socketAddress } from "./address.ts";
import { AddressError, WireError } from "./errors.ts";
import { toHex } from "./hex.ts";
import { parseIpv4 } from "./ipv4.ts";
import { parseIpv6 } from "./ipv6.ts";
import { ALL_CHECKSUMS, buildUdpHeaders, buildUdpPacket, maxUdpPayload, RAW_SOCKET_CHECKSUMS, udpHeadersLength } from "./packet.ts";
import { parseUdp } from "./udp.ts";
import { ipv4Bytes, ipv6Bytes, port, ROUNDTRIP_RUNS, sameBytes } from "./test_support.ts";

const hello = new TextEncoder().encode("hello");

describe("buildUdpPacket", () => {
  it("writes the known IPv4 and IPv6 packets byte for byte (both checked with tcpdump -vvv)", () => {
    const buf = new Uint8Array(100);
    let n = buildUdpPacket(buf, 0, parseSocketAddress("198.19.2.2:7000"), parseSocketAddress("198.18.1.2:40000"), hello, { checksums: ALL_CHECKSUMS });
    expect(toHex(buf.subarray(0, n))).toBe("45000021000000004011eba2c6130202c61201021b589c40000d753f68656c6c6f");
    n = buildUdpPacket(buf, 0, parseSocketAddress("[2001:db8:2::2]:7000"), parseSocketAddress("[2001:db8:1::2]:40000"), hello, { checksums: ALL_CHECKSUMS });
    expect(toHex(buf.subarray(0, n))).toBe(
      "60000000000d114020010db800020000000000000000000220010db80001000000000000000000021b589c40000da8f068656c6c6f",
    );
  });

  it("leaves the IPv4 header checksum to the kernel on a raw socket, but always fills UDP's", () => {
    const buf = new Uint8Array(100);
    buildUdpPacket(buf, 0, parseSocketAddress("198.19.2.2:7000"), parseSocketAddress("198.18.1.2:40000"), hello, { checksums: RAW_SOCKET_CHECKSUMS });
    expect(buf[10]! | buf[11]!).toBe(0);
    expect(toHex(buf.subarray(26, 28))).toBe("753f");
  });

  it("headers-only equals the whole packet when the payload lives in another buffer (two iovecs)", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.tuple(ipv4Bytes, ipv4Bytes), fc.tuple(ipv6Bytes, ipv6Bytes)),
        port,
        port,
        fc.uint8Array({ maxLength: 2000 }),
        fc.nat(3),
        ([s, d], sp, dp, payload, shift) => {
          const src = socketAddress(s, sp), dst = socketAddress(d, dp);
          const whole = new Uint8Array(48 + payload.length);
          const n = buildUdpPacket(whole, 0, src, dst, payload, { checksums: ALL_CHECKSUMS, ttl: 9, tos: 0x2e });
          const head = new Uint8Array(52);
          const other = new Uint8Array(payload.length + 4);
          other.set(payload, shift);
          const h = buildUdpHeaders(head, 4, src, dst, other.subarray(shift, shift + payload.length), { checksums: ALL_CHECKSUMS, ttl: 9, tos: 0x2e });
          expect(h).toBe(udpHeadersLength(src.family));
          expect(n).toBe(h + payload.length);
          expect(sameBytes(head.subarray(4, 4 + h), whole.subarray(0, h))).toBe(true);
          // And the result verifies with the independent-path parsers.
          const ip = src.family === 4 ? parseIpv4(whole.subarray(0, n)) : parseIpv6(whole.subarray(0, n));
          const udp = parseUdp(ip.payload, src.ip, dst.ip);
          expect(udp.checksumValid).toBe(true);
          expect(sameBytes(udp.payload, payload)).toBe(true);
        },
      ),
      { numRuns: ROUNDTRIP_RUNS },
    );
  });

  it("sends a computed checksum of 0 as 0xffff", () => {
    const src = parseSocketAddress("198.19.2.2:7000"), dst = parseSocketAddress("198.18.1.2:40000");
    const payload = new Uint8Array(8);
    const buf = new Uint8Array(64);
    buildUdpPacket(buf, 0, src, dst, payload, { checksums: ALL_CHECKSUMS });
    // Put the checksum word into the payload: the data now sums to 0xffff, so the checksum computes to 0.
    payload[6] = buf[26]!;
    payload[7] = buf[27]!;
    buildUdpPacket(buf, 0, src, dst, payload, { checksums: ALL_CHECKSUMS });
    expect(toHex(buf.subarray(26, 28))).toBe("ffff");
    expect(parseUdp(buf.subarray(20, 36), src.ip, dst.ip).checksumValid).toBe(true);
  });

  it("refuses mixed families and oversize payloads with typed errors", () => {
    const buf = new Uint8Array(70000);
    const v4 = parseSocketAddress("198.19.2.2:7000"), v6 = parseSocketAddress("[2001:db8::1]:7000");
    expect(() => buildUdpPacket(buf, 0, v4, v6, hello, { checksums: ALL_CHECKSUMS })).toThrow(AddressError);
    expect(() => buildUdpPacket(buf, 0, v4, v4, new Uint8Array(65508), { checksums: ALL_CHECKSUMS })).toThrow(WireError);
    expect(buildUdpPacket(buf, 0, v4, v4, new Uint8Array(maxUdpPayload(4)), { checksums: ALL_CHECKSUMS })).toBe(65535);
    expect(buildUdpPacket(buf, 0, v6, v6, new Uint8Array(maxUdpPayload(6)), { checksums: ALL_CHECKSUMS })).toBe(65575);
    expect(() => buildUdpPacket(new Uint8Array(30), 0, v4, v4, hello, { checksums: ALL_CHECKSUMS })).toThrow("does not fit");
  });
});
