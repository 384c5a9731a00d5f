import { describe, expect, it } from "vitest";
import { parseSocketAddress } from "./address.ts";
import { addressKey, addressKeyOf } from "./address_key.ts";

describe("address keys: a number per socket address for Maps on the per-datagram path", () => {
  it("IPv4 keys are exact: address × 65536 + port", () => {
    expect(addressKey(parseSocketAddress("198.18.1.2:53"))).toBe(((198 << 24 >>> 0) + (18 << 16) + (1 << 8) + 2) * 65536 + 53);
    expect(addressKey(parseSocketAddress("255.255.255.255:65535"))).toBe(2 ** 48 - 1);
  });

  it("the same address gives the same key wherever its bytes lie; a different port or address, another", () => {
    const a = parseSocketAddress("[2001:db8::7]:443");
    const inBuffer = new Uint8Array(20);
    inBuffer.set(a.ip, 4);
    expect(addressKeyOf(inBuffer, 4, 16, 443)).toBe(addressKey(a));
    expect(addressKey(parseSocketAddress("[2001:db8::7]:444"))).not.toBe(addressKey(a));
    expect(addressKey(parseSocketAddress("[2001:db8::8]:443"))).not.toBe(addressKey(a));
  });

  it("IPv6 keys are integers above every IPv4 key, and 100 000 neighbouring addresses do not collide", () => {
    const keys = new Set<number>();
    const ip = parseSocketAddress("[2001:db8::]:9").ip.slice();
    let outOfRange = 0;
    for (let i = 0; i < 100_000; i++) {
      ip[14] = i >> 8;
      ip[15] = i & 0xff;
      ip[13] = i >> 16;
      const key = addressKeyOf(ip, 0, 16, 9);
      if (!Number.isSafeInteger(key) || key < 2 ** 52 - 1) outOfRange++;
      keys.add(key);
    }
    expect({ distinct: keys.size, outOfRange }).toEqual({ distinct: 100_000, outOfRange: 0 });
  });
});
