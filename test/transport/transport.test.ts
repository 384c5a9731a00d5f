import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADDRESSES as A, compileC, createTestbed, NONE, requirePrivileges, runtimeArgv, RUNTIMES, type Testbed, UDP_PEER } from "@anysrc/testbed";

const SCENARIOS = "test/transport/transport_scenarios.ts";
const PEER = ["node", UDP_PEER];
const KINDS = ["raw", "bindsrc", "tun", "packet"] as const;
const run = requirePrivileges("transport conformance suite");
let port = 41000;

describe.skipIf(!run)("transport conformance: spoofed source from the router, connected receiver on the client", () => {
  let bed: Testbed;
  beforeAll(() => {
    bed = createTestbed();
  });
  afterAll(async () => {
    await bed?.destroy();
  });

  for (const runtime of RUNTIMES) {
    it(`tun under ${runtime} receives datagrams routed into the device, fragments reassembled, as an async iterator; one with a wrong UDP checksum is dropped and counted`, async () => {
      const tun = `asrx${process.pid % 10000}${runtime[0]}`;
      const r = bed.spawn(bed.router, runtimeArgv(runtime, SCENARIOS, ["tun-receive", tun, "4"]));
      await r.waitFor((l) => l.ready === true);
      bed.run(bed.router, ["ip", "route", "add", "198.18.210.0/24", "dev", tun]);
      bed.run(bed.router, ["ip", "-6", "route", "add", "2001:db8:210::/64", "dev", tun]);
      // First a datagram the kernel would drop for its checksum (a raw socket's: no offload marks it partial).
      bed.run(bed.router, [compileC(["udp_badsum"]).udp_badsum!, "198.18.210.7", "5000"]);
      for (
        const [dst, size] of [["198.18.210.7:5000", "64"], ["198.18.210.7:5000", "3000"], ["[2001:db8:210::7]:5000", "64"], [
          "[2001:db8:210::7]:5000",
          "3000",
        ]] as const
      ) {
        await bed.spawn(bed.router, [...PEER, "send-pattern", dst, size]).exited();
      }
      const done = await r.waitFor((l) => l.done === true);
      const got = done.got as { dst: string; size: number; intact: boolean }[];
      expect(got.map((g) => [g.dst, g.size, g.intact]).sort()).toEqual([
        ["198.18.210.7:5000", 3000, true],
        ["198.18.210.7:5000", 64, true],
        ["[2001:db8:210::7]:5000", 3000, true],
        ["[2001:db8:210::7]:5000", 64, true],
      ].sort());
      expect((done.received as { badChecksum: number }).badChecksum).toBe(1);
    });
  }

  for (const runtime of RUNTIMES) {
    it(`tun under ${runtime} with offloads reads a GSO super-packet routed into the device as its datagrams`, async () => {
      const tun = `asgr${process.pid % 10000}${runtime[0]}`;
      const r = bed.spawn(bed.router, runtimeArgv(runtime, SCENARIOS, ["tun-receive", tun, "16"]));
      await r.waitFor((l) => l.ready === true);
      bed.run(bed.router, ["ip", "route", "add", "198.18.211.0/24", "dev", tun]);
      // bindsrc with GSO: one UDP_SEGMENT send of 16 × 1000 B, which the stack hands the device whole (TUN_F_USO4).
      const sender = bed.spawn(
        bed.router,
        runtimeArgv(runtime, SCENARIOS, ["send-batch", "bindsrc", `${A.server4}:7000`, "198.18.211.7:5000", "1000", "16", "on"]),
      );
      expect(((await sender.waitFor((l) => l.done === true)).stats as { coalesced: number }).coalesced).toBe(16);
      const done = await r.waitFor((l) => l.done === true);
      const got = done.got as { src: string; dst: string; size: number; intact: boolean }[];
      expect(got).toEqual(Array.from({ length: 16 }, () => ({ src: `${A.server4}:7000`, dst: "198.18.211.7:5000", size: 1000, intact: true })));
      // Fewer reads than datagrams: the device was handed the super-packet, not 16 packets.
      expect((done.received as { packets: number }).packets).toBeLessThan(16);
    });
  }

  for (const kind of KINDS) {
    describe.each(RUNTIMES)(`${kind} under %s`, (runtime) => {
      for (
        const [family, src, clientHost, max] of [
          ["IPv4", `${A.server4}:7000`, A.client4, 65507],
          ["IPv6", `[${A.server6}]:7000`, `[${A.client6}]`, 65527],
        ] as const
      ) {
        it(`delivers ${family} datagrams of 0–${max} bytes with the exact source, every byte intact, no loss`, async () => {
          const sizes = [0, 1, 64, 1200, 1472, 3000, 9000, max];
          const count = 20;
          const dst = `${clientHost}:${++port}`;
          const receiver = bed.spawn(bed.client, [...PEER, "recv-sizes", dst, src, sizes.join(","), String(count), "10000"]);
          await receiver.waitFor((l) => l.ready === true);
          const tun = `ast${process.pid % 10000}${port % 100}`;
          const sender = bed.spawn(bed.router, runtimeArgv(runtime, SCENARIOS, ["send", kind, src, dst, sizes.join(","), String(count), "5", tun]));
          const sent = await sender.waitFor((l) => l.done === true, 60_000);
          const stats = sent.stats as { sent: number; dropped: Record<string, number>; errors: Record<string, number>; fragments: number };
          expect(stats.dropped).toEqual({});
          expect(stats.sent).toBe(sizes.length * count);
          if (kind !== "bindsrc") expect(stats.fragments).toBeGreaterThan(0); // raw, tun and packet fragment themselves
          // packet: frames through AF_PACKET once the next hop is known; only the first may go through the raw socket.
          if (kind === "packet") expect((stats as unknown as { viaRaw: number }).viaRaw).toBeLessThan(stats.sent / 2);
          const got = await receiver.waitFor((l) => l.done === true, 20_000);
          expect(got).toMatchObject({ corrupt: 0, unexpected: 0, duplicates: 0 });
          expect(got.perSize).toEqual(Object.fromEntries(sizes.map((z) => [String(z), count])));
          expect(await sender.exited()).toBe(0);
        });
      }

      if (kind === "bindsrc" || kind === "tun") {
        for (
          const [family, src, clientHost, max, segmentMax] of [
            ["IPv4", `${A.server4}:7000`, A.client4, 65507, 1472],
            ["IPv6", `[${A.server6}]:7000`, `[${A.client6}]`, 65527, 1452],
          ] as const
        ) {
          for (const offload of ["on", "off"] as const) {
            it(`offload ${offload}: one batch of ${family} runs (GSO where sizes allow, tails shorter than the segment, up to ${max} B) arrives whole, from the exact source`, async () => {
              // Descending sizes: each run's next datagram is shorter, so it may end that run as its short last segment.
              const sizes = [max, 9000, 3000, segmentMax, 1200, 1199, 64, 1, 0];
              const count = 20;
              const dst = `${clientHost}:${++port}`;
              const receiver = bed.spawn(bed.client, [...PEER, "recv-sizes", dst, src, sizes.join(","), String(count), "10000"]);
              await receiver.waitFor((l) => l.ready === true);
              const tun = `asg${process.pid % 10000}${port % 100}`;
              const sender = bed.spawn(
                bed.router,
                runtimeArgv(runtime, SCENARIOS, ["send-batch", kind, src, dst, sizes.join(","), String(count), offload, tun]),
              );
              const sent = await sender.waitFor((l) => l.done === true, 60_000);
              const stats = sent.stats as { sent: number; coalesced: number; offloadFallbacks: number; dropped: Record<string, number> };
              expect(stats.dropped).toEqual({});
              expect(stats.sent).toBe(sizes.length * count);
              expect(stats.offloadFallbacks).toBe(0);
              // Runs of segmentMax, 1200, 1199, 64 and 1 bytes coalesce (each with the next, shorter size as its tail).
              if (offload === "on") expect(stats.coalesced).toBeGreaterThanOrEqual(5 * count);
              else expect(stats.coalesced).toBe(0);
              const got = await receiver.waitFor((l) => l.done === true, 20_000);
              expect(got).toMatchObject({ corrupt: 0, unexpected: 0, duplicates: 0 });
              expect(got.perSize).toEqual(Object.fromEntries(sizes.map((z) => [String(z), count])));
              expect(await sender.exited()).toBe(0);
            });
          }
        }
      }

      if (kind === "bindsrc" || kind === "tun") {
        it(`a GSO send the kernel refuses falls back to plain sends, counted and told once, losing nothing (${kind === "tun" ? "TUNSETOFFLOAD refused" : "EMSGSIZE: segments over the route MTU"})`, async () => {
          const sizes = [1200, 1199, 64];
          const count = 40;
          const src = `${A.server4}:7000`;
          const dst = `${A.client4}:${++port}`;
          const receiver = bed.spawn(bed.client, [...PEER, "recv-sizes", dst, src, sizes.join(","), String(count), "10000"]);
          await receiver.waitFor((l) => l.ready === true);
          // A 1000-byte route MTU to the client: plain 1200-byte datagrams are fragmented by the kernel,
          // but a GSO send of 1200-byte segments is refused (EINVAL).
          const route = [`${A.client4}/32`, "dev", bed.routerClientLink, "mtu", "lock", "1000"];
          if (kind === "bindsrc") bed.run(bed.router, ["ip", "route", "add", ...route]);
          const tun = `asf${process.pid % 10000}${port % 100}`;
          try {
            const sender = bed.spawn(
              bed.router,
              runtimeArgv(runtime, SCENARIOS, ["send-batch", kind, src, dst, sizes.join(","), String(count), "refuse", tun]),
            );
            const told = await sender.waitFor((l) => typeof l.fallback === "string");
            expect(told.fallback).toMatch(kind === "tun" ? /TUNSETOFFLOAD .*EINVAL/ : /refused \(EMSGSIZE\)/);
            const sent = await sender.waitFor((l) => l.done === true, 60_000);
            const stats = sent.stats as { sent: number; coalesced: number; offloadFallbacks: number; dropped: Record<string, number> };
            expect(stats).toMatchObject({ sent: sizes.length * count, coalesced: 0, offloadFallbacks: 1, dropped: NONE });
            const got = await receiver.waitFor((l) => l.done === true, 20_000);
            expect(got).toMatchObject({ corrupt: 0, unexpected: 0, duplicates: 0 });
            expect(got.perSize).toEqual(Object.fromEntries(sizes.map((z) => [String(z), count])));
          } finally {
            if (kind === "bindsrc") bed.run(bed.router, ["ip", "route", "del", ...route]);
          }
        });
      }

      it("refuses bad input with typed errors, sends nothing for it, and keeps going", async () => {
        const tun = `asb${process.pid % 10000}${++port % 100}`;
        const r = bed.spawn(bed.router, runtimeArgv(runtime, SCENARIOS, ["bad-input", kind, tun]));
        const done = await r.waitFor((l) => l.done === true);
        const results = done.results as { name: string; error: string; kind: string; message: string }[];
        expect(results.map((x) => [x.name, x.error, x.kind])).toEqual([
          ["mixed families", "TransportError", "mixed-families"],
          ["payload over the maximum", "TransportError", "payload-too-large"],
          ["IPv6 payload over the maximum", "TransportError", "payload-too-large"],
          ["destination port 0", "TransportError", "bad-port"],
        ]);
        expect(results[0]!.message).toBe("source [2001:db8:2::2]:7000 and destination 198.18.1.2:40100 are different IP families");
        expect(done.sentBefore).toBe(0);
        expect(done.sentAfter).toBe(1);
        const unusable = done.unusable as { error: string; code?: string; message: string };
        if (kind === "raw") expect(unusable).toMatchObject({ error: "SystemError", code: "ENODEV" });
        if (kind === "tun") expect(unusable).toMatchObject({ error: "RangeError" });
        if (kind === "packet") expect(unusable).toBeNull(); // no device or source to refuse: next hops come from the kernel
        if (kind === "bindsrc") {
          expect(unusable).toMatchObject({ error: "SystemError", code: "EADDRINUSE", message: "bind 198.19.2.1:22222: EADDRINUSE (address already in use)" });
          expect((done.stats as { dropped: Record<string, number> }).dropped).toEqual({ "address-in-use": 1 });
        }
      });
    });
  }

  // raw, tun and packet build their own IPv4 headers with DF clear, so any hop may fragment them:
  // RFC 6864 then wants no ID repeated to a destination, as the kernel's own packets have none.
  for (const kind of ["raw", "tun", "packet"] as const) {
    for (const runtime of RUNTIMES) {
      it(`${kind} under ${runtime}: 10 000 unfragmented packets and 10 000 fragment trains to one destination carry 20 000 distinct non-zero IDs, one per train (captured, decoded with @anysrc/core)`, async () => {
        const dst = `${A.client4}:${++port}`;
        const capture = bed.spawn(bed.client, runtimeArgv("bun", SCENARIOS, ["capture-ids", "-", A.server4, "20000", "60000"]));
        await capture.waitFor((l) => l.ready === true);
        const tun = `asid${process.pid % 10000}${port % 100}`;
        // One sender: 10 000 datagrams of 100 B, then 10 000 of 3000 B (three fragments each).
        const sender = bed.spawn(bed.router, runtimeArgv(runtime, SCENARIOS, ["send", kind, `${A.server4}:7000`, dst, "100,3000", "10000", "10", tun]));
        await sender.waitFor((l) => l.done === true, 60_000);
        expect(await sender.exited()).toBe(0);
        const got = await capture.waitFor((l) => l.done === true, 60_000);
        expect(got).toMatchObject({
          whole: 10000,
          wholeDistinct: 10000,
          zeroIds: 0,
          dontFragment: 0,
          trains: 10000,
          trainsComplete: 10000,
          trainIdsAlsoWhole: 0,
        });
      });
    }
  }
});
