import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Cidr, cidrContains, parseCidr, parseIp } from "./address.ts";
import { createPrefixTable } from "./prefix_table.ts";
import { ipv4Bytes, ipv6Bytes } from "./test_support.ts";

describe("createPrefixTable", () => {
  it("finds every network containing an address, shortest first, and the longest alone", () => {
    const t = createPrefixTable<string>();
    t.add(parseCidr("198.18.0.0/15"), "wide");
    t.add(parseCidr("198.18.7.0/24"), "narrow");
    t.add(parseCidr("198.18.7.0/24"), "narrow-too");
    t.add(parseCidr("0.0.0.0/0"), "any4");
    t.add(parseCidr("2001:db8::/32"), "v6");
    expect(t.matching(parseIp("198.18.7.9"))).toEqual(["any4", "wide", "narrow", "narrow-too"]);
    expect(t.longest(parseIp("198.18.7.9"))).toEqual(["narrow", "narrow-too"]);
    expect(t.matching(parseIp("198.19.0.1"))).toEqual(["any4", "wide"]);
    expect(t.matching(parseIp("::ffff:198.18.7.1"))).toEqual(["any4", "wide", "narrow", "narrow-too"]);
    expect(t.matching(parseIp("2001:db8:1::1"))).toEqual(["v6"]);
    expect(t.matching(parseIp("2001:db9::1"))).toEqual([]);
    expect(t.longest(parseIp("2001:db9::1"))).toEqual([]);
    expect(t.size).toBe(4);
  });

  it("a host route matches only its host", () => {
    const t = createPrefixTable<number>();
    t.add(parseCidr("198.18.1.2"), 1);
    t.add(parseCidr("2001:db8::2"), 2);
    expect(t.matching(parseIp("198.18.1.2"))).toEqual([1]);
    expect(t.matching(parseIp("198.18.1.3"))).toEqual([]);
    expect(t.matching(parseIp("2001:db8::2"))).toEqual([2]);
  });

  it("agrees with a linear scan of cidrContains for random networks and addresses", () => {
    const net = fc.oneof(
      fc.tuple(ipv4Bytes, fc.integer({ min: 0, max: 32 })).map(([ip, prefix]): Cidr => ({ family: 4, ip, prefix })),
      fc.tuple(ipv6Bytes, fc.integer({ min: 0, max: 128 })).map(([ip, prefix]): Cidr => ({ family: 6, ip, prefix })),
    );
    fc.assert(
      fc.property(fc.array(net, { maxLength: 20 }), fc.array(fc.oneof(ipv4Bytes, ipv6Bytes), { maxLength: 20 }), (nets, ips) => {
        const t = createPrefixTable<number>();
        nets.forEach((n, i) => t.add(n, i));
        for (const ip of ips) {
          const expected = nets.flatMap((n, i) => (cidrContains(n, ip) ? [i] : []));
          expect([...t.matching(ip)].sort((a, b) => a - b)).toEqual(expected);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
