import { describe, expect, it } from "vitest";
import { AddressError, formatSocketAddress, parseCidr, parseIp, parseSocketAddress } from "@anysrc/core";
import { parsePrefix, parseReceiver, parseReceiversFile } from "../src/forward/receivers.ts";
import { createForwardRoutes } from "../src/forward/forward_routes.ts";

describe("parseReceiver", () => {
  it("reads anysrc's syntax: ADDR[/N][,ttl=T][,plain]", () => {
    expect(parseReceiver("198.18.7.10:2055")).toMatchObject({ every: 1, plain: false, name: "198.18.7.10:2055" });
    const r = parseReceiver("198.18.7.10:2055/10,ttl=4,plain");
    expect(r).toMatchObject({ every: 10, ttl: 4, plain: true, name: "198.18.7.10:2055/10,ttl=4,plain" });
    expect(formatSocketAddress(r.address)).toBe("198.18.7.10:2055");
    expect(parseReceiver("[2001:db8::7]:2055/3")).toMatchObject({ every: 3, name: "[2001:db8::7]:2055/3" });
  });

  it("reads samplicator's HOST/PORT[/N][,TTL] into the same record", () => {
    expect(parseReceiver("198.18.7.10/2055/10,4")).toEqual(parseReceiver("198.18.7.10:2055/10,ttl=4"));
    expect(parseReceiver("2001:db8::7/2055")).toEqual(parseReceiver("[2001:db8::7]:2055"));
  });

  it.each([
    ["198.18.7.10", "expected ADDR:PORT"],
    ["198.18.7.10:2055/0", "sampling rate N must be 1-1000000"],
    ["198.18.7.10:2055,ttl=0", "ttl must be 1-255"],
    ["198.18.7.10:2055,ttl=300", "ttl must be 1-255"],
    ["198.18.7.10:2055,fast", 'unknown option "fast"'],
    ["198.18.7.10:0", "port 0"],
    ["collector.example/2055", "is not an IP address"],
    ["2001:db8::7:2055", "[2001:db8::7]:2055"],
  ])("refuses %s with a message that says why", (text, why) => {
    expect(() => parseReceiver(text)).toThrow(AddressError);
    expect(() => parseReceiver(text)).toThrow(why);
  });
});

describe("parsePrefix and parseReceiversFile", () => {
  it("reads CIDR, dotted netmasks and bare hosts", () => {
    expect(parsePrefix("10.0.0.0/255.0.0.0")).toEqual(parseCidr("10.0.0.0/8"));
    expect(parsePrefix("198.18.0.0/255.254.0.0").prefix).toBe(15);
    expect(parsePrefix("0.0.0.0/0.0.0.0").prefix).toBe(0);
    expect(parsePrefix("198.18.1.2").prefix).toBe(32);
    expect(parsePrefix("2001:db8::/32").prefix).toBe(32);
    expect(() => parsePrefix("10.0.0.0/255.0.255.0")).toThrow("not a contiguous netmask");
  });

  it("reads a samplicator config file as is, and anysrc lines beside it", () => {
    const rules = parseReceiversFile(
      [
        "# NetFlow from the core routers",
        "198.18.0.0/255.254.0.0: 198.19.7.10/2055/10,4 198.19.7.11/2055",
        "2001:db8::/32: [2001:db8:7::10]:2055,plain   # trailing comment",
        "",
        "198.18.1.2: 198.19.7.12:2055",
      ].join("\n"),
      "r.conf",
    );
    expect(rules.map((r) => [r.prefix.prefix, r.receivers.map((x) => x.name)])).toEqual([
      [15, ["198.19.7.10:2055/10,ttl=4", "198.19.7.11:2055"]],
      [32, ["[2001:db8:7::10]:2055,plain"]],
      [32, ["198.19.7.12:2055"]],
    ]);
  });

  it.each([
    ["198.18.0.0/15 198.19.7.10:2055", "r.conf:2: expected"],
    ["198.18.0.0/15:", "r.conf:2: no receivers"],
    ["198.18.0.0/33: 198.19.7.10:2055", "r.conf:2: Cannot parse network"],
    ["198.18.0.0/15: 198.19.7.10", "r.conf:2: Cannot parse receiver"],
  ])("names the file and line of a bad line: %s", (line, why) => {
    expect(() => parseReceiversFile(`# ok\n${line}\n`, "r.conf")).toThrow(why);
  });
});

describe("createForwardRoutes", () => {
  const spec = parseReceiver;
  it("gives a sender its --to receivers and those of every prefix containing it, each once, of its family", () => {
    const routes = createForwardRoutes(
      [spec("198.19.7.1:1"), spec("[2001:db8::1]:1")],
      [
        { prefix: parseCidr("198.18.0.0/15"), receivers: [spec("198.19.7.2:1"), spec("198.19.7.1:1")] },
        { prefix: parseCidr("198.18.1.0/24"), receivers: [spec("198.19.7.3:1/5")] },
      ],
      [parseCidr("198.18.0.0/15"), parseCidr("2001:db8::/32")],
    );
    const names = (sender: string) => [...routes.targetsOf(parseSocketAddress(sender))].map((i) => routes.receivers[i]!.spec.name);
    expect(names("198.18.1.9:5")).toEqual(["198.19.7.1:1", "198.19.7.2:1", "198.19.7.3:1/5"]);
    expect(names("198.19.0.1:5")).toEqual(["198.19.7.1:1", "198.19.7.2:1"]);
    expect(names("[2001:db8::9]:5")).toEqual(["[2001:db8::1]:1"]);
    expect(routes.sampling).toBe(true);
    expect(routes.allows(parseSocketAddress("198.18.1.9:5"))).toBe(true);
    expect(routes.allows({ family: 4, ip: parseIp("203.0.113.1"), port: 5 })).toBe(false);
  });

  it("keeps the counters and sampling position of receivers a reload keeps", () => {
    const before = createForwardRoutes([spec("198.19.7.1:1/10"), spec("198.19.7.2:1")], [], []);
    before.receivers[0]!.seen = 7;
    before.receivers[0]!.counters.copies = 3;
    const after = createForwardRoutes([spec("198.19.7.1:1/10"), spec("198.19.7.3:1")], [], [], before);
    expect(after.receivers[0]).toBe(before.receivers[0]);
    expect(after.receivers[1]!.counters.copies).toBe(0);
    expect(after.receivers.map((r) => r.spec.name)).toEqual(["198.19.7.1:1/10", "198.19.7.3:1"]);
  });
});
