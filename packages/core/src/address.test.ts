import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cidrContains, formatIp, formatSocketAddress, isUnicast, parseCidr, parseIp, parseSocketAddress, sameSocketAddress, socketAddress } from "./address.ts";
import { AddressError } from "./errors.ts";
import { ipv4Bytes, ipv6Bytes, port } from "./test_support.ts";

describe("SocketAddress", () => {
  it("parses and formats IPv4 and bracketed IPv6", () => {
    const a = parseSocketAddress("198.18.1.2:53");
    expect(a).toEqual({ family: 4, ip: new Uint8Array([198, 18, 1, 2]), port: 53 });
    expect(formatSocketAddress(a)).toBe("198.18.1.2:53");
    const b = parseSocketAddress("[2001:db8::1]:53");
    expect(b.family).toBe(6);
    expect(formatSocketAddress(b)).toBe("[2001:db8::1]:53");
  });

  it("normalises IPv4-mapped IPv6 to IPv4", () => {
    const a = parseSocketAddress("[::ffff:198.18.1.2]:7000");
    expect(a.family).toBe(4);
    expect(formatSocketAddress(a)).toBe("198.18.1.2:7000");
    expect(socketAddress(parseIp("::ffff:c612:0102"), 1).family).toBe(4);
  });

  it("formats IPv6 canonically (RFC 5952)", () => {
    expect(formatIp(parseIp("2001:0db8:0000:0000:0000:0000:0002:0001"))).toBe("2001:db8::2:1");
    expect(formatIp(parseIp("2001:db8:0:1:1:1:1:1"))).toBe("2001:db8:0:1:1:1:1:1");
    expect(formatIp(parseIp("2001:0:0:1:0:0:0:1"))).toBe("2001:0:0:1::1");
    expect(formatIp(parseIp("::"))).toBe("::");
    expect(formatIp(parseIp("::1"))).toBe("::1");
    expect(formatIp(parseIp("fe80::"))).toBe("fe80::");
  });

  it.each([
    ["1.2.3.4:99999", "port out of range"],
    ["1.2.3.4", "missing ':PORT'"],
    ["1.2.3.4:", "missing port"],
    ["1.2.3:53", "is not an IPv4 address"],
    ["01.2.3.4:53", "is not an IPv4 address"],
    ["2001:db8::1:53", "must be written in brackets"],
    ["[2001:db8::1]53", "expected ':PORT'"],
    ["[2001:db8::1:53", "missing ']'"],
    ["[2001:db8:::1]:53", "is not an IPv6 address"],
    ["[1:2:3:4:5:6:7:8:9]:53", "is not an IPv6 address"],
    ["host:53", "is not an IPv4 address"],
  ])("rejects %s with a message quoting it", (text, why) => {
    expect(() => parseSocketAddress(text)).toThrow(AddressError);
    expect(() => parseSocketAddress(text)).toThrow(`Cannot parse address "${text}"`);
    expect(() => parseSocketAddress(text)).toThrow(why);
  });

  it("format → parse round-trips every address", () => {
    fc.assert(
      fc.property(fc.oneof(ipv4Bytes, ipv6Bytes), port, (ip, p) => {
        const a = socketAddress(ip, p);
        expect(sameSocketAddress(parseSocketAddress(formatSocketAddress(a)), a)).toBe(true);
      }),
      { numRuns: 20_000 },
    );
  });

  it("CIDR membership", () => {
    const net = parseCidr("198.18.0.0/15");
    expect(cidrContains(net, parseIp("198.19.255.255"))).toBe(true);
    expect(cidrContains(net, parseIp("198.20.0.0"))).toBe(false);
    expect(cidrContains(net, parseIp("::ffff:198.18.0.1"))).toBe(true);
    expect(cidrContains(parseCidr("2001:db8::/32"), parseIp("2001:db8:ffff::1"))).toBe(true);
    expect(cidrContains(parseCidr("2001:db8::/32"), parseIp("2001:db9::1"))).toBe(false);
    expect(cidrContains(parseCidr("0.0.0.0/0"), parseIp("2001:db9::1"))).toBe(false);
    expect(() => parseCidr("198.18.0.0/33")).toThrow(`Cannot parse network "198.18.0.0/33": prefix must be 0-32`);
  });
});

describe("isUnicast", () => {
  it.each([
    ["198.18.1.2", true],
    ["0.0.0.0", false],
    ["224.0.0.1", false],
    ["239.255.255.255", false],
    ["240.0.0.1", false],
    ["255.255.255.255", false],
    ["2001:db8::1", true],
    ["::", false],
    ["ff02::1", false],
    ["ff0e::1:2", false],
    ["::1", true],
    ["::ffff:198.18.1.2", true],
  ])("%s → %s", (text, unicast) => {
    expect(isUnicast(parseIp(text))).toBe(unicast);
  });
});
